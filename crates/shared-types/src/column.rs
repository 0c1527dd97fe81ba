//! (feature `diesel`) The enums stored as text columns, read and written by diesel on SQLite and PostgreSQL.
//! A stored value this version does not know is an error, never a default; the store that read it names the
//! row. (service-common adds the same for its connection type over both.)

/// `ToSql`/`FromSql` for a `Text` column on SQLite and PostgreSQL, through the type's `as_str` and `parse`;
/// `$what` completes "`x` is not …" in the error.
#[macro_export]
macro_rules! text_column_backends {
    ($t:ty, $what:literal) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $t {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::sqlite::Sqlite>,
            ) -> diesel::serialize::Result {
                out.set_value(self.as_str());
                Ok(diesel::serialize::IsNull::No)
            }
        }
        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $t {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }
        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::sqlite::Sqlite> for $t {
            fn from_sql(
                bytes: <diesel::sqlite::Sqlite as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                let s = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::sqlite::Sqlite,
                >>::from_sql(bytes)?;
                <$t>::parse(&s).ok_or_else(|| format!("`{s}` is not {}", $what).into())
            }
        }
        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $t {
            fn from_sql(
                bytes: <diesel::pg::Pg as diesel::backend::Backend>::RawValue<'_>,
            ) -> diesel::deserialize::Result<Self> {
                let s = <String as diesel::deserialize::FromSql<
                    diesel::sql_types::Text,
                    diesel::pg::Pg,
                >>::from_sql(bytes)?;
                <$t>::parse(&s).ok_or_else(|| format!("`{s}` is not {}", $what).into())
            }
        }
    };
}

text_column_backends!(crate::AuthClass, "Company or Location");
text_column_backends!(
    crate::InstallationState,
    "one of active, suspended, needs_reauth, uninstalled"
);
