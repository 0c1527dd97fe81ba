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

/// A lookup over `base` name/value pairs, with `extra` overriding or adding names: how each service's
/// `for_simulator` settings are built from its `simulator_env`.
pub fn pairs_lookup(
    base: Vec<(&'static str, String)>,
    extra: &[(&str, String)],
) -> impl Fn(&str) -> Option<String> {
    let mut map: std::collections::HashMap<String, String> =
        base.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    for (k, v) in extra {
        map.insert((*k).to_owned(), v.clone());
    }
    move |k| map.get(k).cloned()
}
