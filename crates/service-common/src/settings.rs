//! Where settings come from (the `config` crate): built-in defaults < the file named by `CONFIG_FILE` < the
//! environment. Each service reads its own names through the lookup this returns.

/// A key → value lookup over `CONFIG_FILE` (optional) and the environment; empty values count as unset.
pub fn lookup() -> Result<impl Fn(&str) -> Option<String>, String> {
    let mut builder = config::Config::builder();
    if let Ok(file) = std::env::var("CONFIG_FILE") {
        builder = builder.add_source(config::File::with_name(&file).required(true));
    }
    let cfg = builder
        .add_source(config::Environment::default())
        .build()
        .map_err(|e| format!("cannot read settings: {e}"))?;
    Ok(move |key: &str| {
        cfg.get_string(&key.to_ascii_lowercase())
            .ok()
            .filter(|v| !v.is_empty())
    })
}
