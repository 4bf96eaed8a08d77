//! The registry of resource types, read from provider manifests.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use super::docs::{self, TypeDoc};

/// Keywords accepted by every resource and wrapper that are never type fields (spec §3).
pub const META_KEYWORDS: &[&str] = &[
    "when",
    "tags",
    "become",
    "sensitive",
    "retry",
    "timeout",
    "desc",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    provider: ProviderSection,
    #[serde(default)]
    types: Vec<TypeSection>,
    /// Capabilities are enforced by the provider host; the registry only carries them.
    #[serde(default)]
    #[allow(dead_code)]
    capabilities: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderSection {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeSection {
    name: String,
    definition: String,
    identity: String,
    natural: Option<String>,
    #[serde(default)]
    summary: String,
    /// Other names a config may use for a field (`package = "name"`): the schema unifies
    /// the two, and the alias is dropped from the config once validated.
    #[serde(default)]
    aliases: BTreeMap<String, String>,
}

/// One resource type, e.g. `linux.file::file`.
#[derive(Debug)]
pub struct ResourceType {
    /// Full name, `provider.namespace::kind`.
    pub name: String,
    pub provider: String,
    pub provider_version: String,
    /// The CUE definition in the provider's schema, e.g. `#File`.
    pub definition: String,
    /// The field that holds the identity; filled from the resource name when absent.
    pub identity: String,
    /// The field whose value a Handle of this type becomes inside another config.
    pub natural: String,
    pub summary: String,
    /// Alias field → the field it stands for (the original design's names).
    pub aliases: BTreeMap<String, String>,
    /// The provider's whole `schema.cue`.
    pub schema_source: Arc<str>,
    /// Fields, defaults and docs extracted from the schema.
    pub doc: TypeDoc,
}

impl ResourceType {
    pub fn field(&self, name: &str) -> Option<&super::FieldDoc> {
        self.doc.fields.iter().find(|f| f.name == name)
    }
}

/// Every known resource type, by name.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    types: BTreeMap<String, Arc<ResourceType>>,
    providers: BTreeMap<String, String>,
}

impl Registry {
    /// The registry of the built-in providers (parsed once per process).
    pub fn builtin() -> &'static Registry {
        static REG: OnceLock<Registry> = OnceLock::new();
        REG.get_or_init(|| {
            let mut reg = Registry::default();
            for (dir, manifest, schema, _) in crate::bundled::PROVIDERS {
                // The bundled providers are part of the binary: a bad one is a build bug,
                // caught by `registry_loads_builtin_providers`.
                reg.add_provider(manifest, schema)
                    .unwrap_or_else(|e| panic!("bundled provider `{dir}` is invalid: {e}"));
            }
            reg
        })
    }

    /// The registry of a project: the built-in providers plus the extra ones its
    /// `froyo.toml` pins. Evaluation needs a `'static` registry, so each distinct set of
    /// pinned providers is built once per process and kept (a long-lived language server
    /// keeps one per set it has seen, never one per call).
    pub fn for_project(
        project: &crate::project::Project,
    ) -> Result<&'static Registry, crate::error::Error> {
        type Cache = std::sync::Mutex<BTreeMap<Vec<String>, &'static Registry>>;
        static CACHE: OnceLock<Cache> = OnceLock::new();
        let extra = project.extra_providers()?;
        if extra.is_empty() {
            return Ok(Registry::builtin());
        }
        let key: Vec<String> = extra.iter().map(|p| p.pin.clone()).collect();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(reg) = cache.lock().ok().and_then(|c| c.get(&key).copied()) {
            return Ok(reg);
        }
        let mut reg = Registry::builtin().clone();
        for p in &extra {
            reg.add_provider(&p.manifest, &p.schema)
                .map_err(|message| crate::error::Error::Provider {
                    path: p.dir.clone(),
                    message,
                    help: "see docs/providers.md for the manifest and schema format".into(),
                })?;
        }
        let reg: &'static Registry = Box::leak(Box::new(reg));
        if let Ok(mut c) = cache.lock() {
            c.insert(key, reg);
        }
        Ok(reg)
    }

    /// Adds a provider from its manifest and schema text.
    pub fn add_provider(&mut self, manifest: &str, schema: &str) -> Result<(), String> {
        let m: Manifest = toml::from_str(manifest).map_err(|e| format!("manifest.toml: {e}"))?;
        let schema_source: Arc<str> = Arc::from(schema);
        let defs = docs::extract(schema);
        for t in m.types {
            let doc = defs
                .iter()
                .find(|d| d.definition == t.definition)
                .cloned()
                .ok_or_else(|| {
                    format!(
                        "type `{}`: definition `{}` not in schema.cue",
                        t.name, t.definition
                    )
                })?;
            if let Some(f) = doc
                .fields
                .iter()
                .find(|f| META_KEYWORDS.contains(&f.name.as_str()))
            {
                return Err(format!(
                    "type `{}` declares reserved meta keyword `{}` as a field",
                    t.name, f.name
                ));
            }
            if !doc.fields.iter().any(|f| f.name == t.identity) {
                return Err(format!(
                    "type `{}`: identity field `{}` is not in its schema",
                    t.name, t.identity
                ));
            }
            for (alias, of) in &t.aliases {
                if !doc.fields.iter().any(|f| f.name == *alias)
                    || !doc.fields.iter().any(|f| f.name == *of)
                {
                    return Err(format!(
                        "type `{}`: alias `{alias}` of `{of}` needs both fields in its schema",
                        t.name
                    ));
                }
            }
            let natural = t.natural.unwrap_or_else(|| t.identity.clone());
            let rt = ResourceType {
                name: t.name.clone(),
                provider: m.provider.name.clone(),
                provider_version: m.provider.version.clone(),
                definition: t.definition,
                identity: t.identity,
                natural,
                summary: t.summary,
                aliases: t.aliases,
                schema_source: schema_source.clone(),
                doc,
            };
            if self.types.insert(t.name.clone(), Arc::new(rt)).is_some() {
                return Err(format!("type `{}` is declared twice", t.name));
            }
        }
        self.providers
            .insert(m.provider.name, m.provider.description);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ResourceType>> {
        self.types.get(name)
    }

    pub fn types(&self) -> impl Iterator<Item = &Arc<ResourceType>> {
        self.types.values()
    }

    /// The closest type names to a misspelled one, best first.
    pub fn suggest(&self, name: &str) -> Option<&str> {
        crate::util::did_you_mean(name, self.types.keys().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_loads_builtin_providers() {
        let reg = Registry::builtin();
        for name in [
            "linux.file::file",
            "linux.file::directory",
            "linux.file::symlink",
            "linux.pkg::package",
            "linux.service::service",
            "linux.exec::command",
            "linux.user::user",
            "linux.user::group",
            "linux.user::authorized_keys",
            "linux.firewall::rule",
            "linux.net::download",
            "linux.archive::extract",
            "probe.http::check",
            "probe.tcp::check",
        ] {
            let t = reg.get(name).unwrap_or_else(|| panic!("{name} missing"));
            assert!(!t.doc.fields.is_empty(), "{name} has no fields");
            assert!(
                t.field(&t.natural).is_some(),
                "{name}: natural field missing"
            );
        }
        assert_eq!(reg.suggest("linux.pkg::pakage"), Some("linux.pkg::package"));
    }

    #[test]
    fn meta_keyword_as_field_is_rejected() {
        let mut reg = Registry::default();
        let manifest = "[provider]\nname = \"x\"\nversion = \"0\"\n[[types]]\nname = \"x::y\"\ndefinition = \"#Y\"\nidentity = \"name\"\n";
        let schema = "// Y.\n#Y: {\n\t// The name.\n\tname!: string\n\t// Bad.\n\twhen?: bool\n}\n";
        let err = reg.add_provider(manifest, schema).unwrap_err();
        assert!(err.contains("reserved meta keyword `when`"), "{err}");
    }
}
