use super::*;
use std::collections::HashSet;

/// HighLevel's files hold 576 v2 operations (reference/highlevel-openapi/README.md), each route once.
#[test]
fn every_operation_once() {
    assert_eq!(OPERATIONS.len(), 576);
    let mut routes = HashSet::new();
    let mut names = HashSet::new();
    for op in OPERATIONS {
        assert!(
            routes.insert((op.method, op.path)),
            "{} {} twice",
            op.method.as_str(),
            op.path
        );
        assert!(names.insert(op.name), "{} twice", op.name);
        assert!(!op.classes.is_empty(), "{}", op.name);
    }
}

/// The hand-written entries of the typed calls agree with HighLevel's files: the route exists, the class they
/// use is one it accepts, their scope is one it names. Where the files accept more than the live platform
/// does, an exception says so with its evidence.
#[test]
fn hand_written_entries_agree_with_the_generated_table_or_are_exceptions() {
    for e in TABLE {
        let op = OPERATIONS
            .iter()
            .find(|o| o.method == e.method && same_template(o.path, e.path))
            .unwrap_or_else(|| panic!("{} {} is in no OpenAPI file", e.method.as_str(), e.path));
        assert!(
            op.accepts(e.class),
            "{}: the files say {:?}, the hand-written entry {:?}",
            e.name,
            op.classes,
            e.class
        );
        assert!(
            op.scopes.is_empty() || op.scopes.contains(&e.scope),
            "{}: the files name {:?}, the hand-written entry `{}`",
            e.name,
            op.scopes,
            e.scope
        );
        // Every class the files accept beyond the one used is either also accepted live or an exception:
        // the effective classes are exactly the hand-written one, or the files' without the exceptions.
        let effective: Vec<_> = op.classes.iter().filter(|c| op.accepts(**c)).collect();
        assert!(effective.contains(&&e.class), "{}", e.name);
    }
    // An exception must correct something the files say, or it is stale.
    for x in EXCEPTIONS {
        let op = OPERATIONS
            .iter()
            .find(|o| o.method == x.method && same_template(o.path, x.path))
            .unwrap_or_else(|| panic!("exception for unknown {} {}", x.method.as_str(), x.path));
        assert!(
            op.classes.contains(&x.refused),
            "stale exception {} {}",
            x.method.as_str(),
            x.path
        );
        assert!(!op.accepts(x.refused));
        assert!(!x.evidence.is_empty());
    }
}

/// From the documents: contacts are Sub-Account scopes given as `bearer` only (scope table), location search
/// takes both classes, the token endpoints are Agency only, and `POST /products/` is refused to a Company token
/// live (the first incident) although the file lists Agency-Access.
#[test]
fn classes_as_the_documents_give_them() {
    let get = |m, p: &str| match find(m, p) {
        Lookup::Found(f) => f,
        other => panic!("{p}: {other:?}"),
    };
    let create = get(Post, "/contacts/");
    assert_eq!(create.operation.classes, &[L]);
    assert_eq!(create.operation.class_source, ScopeTable);
    assert_eq!(create.operation.scopes, &["contacts.write"]);
    let search = get(Get, "/locations/search");
    assert!(search.operation.accepts(L) && search.operation.accepts(C));
    let mint = get(Post, "/oauth/locationToken");
    assert_eq!(mint.operation.classes, &[C]);
    let products = get(Post, "/products/");
    assert!(products.operation.classes.contains(&C) && !products.operation.accepts(C));
    // The client's endpoint for a Company token keeps the Location class, so the call is diagnosed, not sent.
    assert_eq!(products.endpoint(C).class, L);
    assert_eq!(products.endpoint(C).name, "products.create");
    assert_eq!(search.endpoint(C).class, C);
    assert_eq!(create.endpoint(C).class, L);
}

#[test]
fn concrete_paths_fill_templates_and_literals_win() {
    match find(Get, "/contacts/abc123") {
        Lookup::Found(f) => {
            assert_eq!(f.operation.path, "/contacts/{contactId}");
            assert_eq!(f.param("contactId"), Some("abc123"));
            assert_eq!(f.path, "/contacts/abc123");
        }
        other => panic!("{other:?}"),
    }
    // `search` is a literal segment, not a contact id.
    match find(Post, "/contacts/search") {
        Lookup::Found(f) => assert_eq!(f.operation.path, "/contacts/search"),
        other => panic!("{other:?}"),
    }
    // A trailing slash is the template's.
    match find(Post, "/contacts") {
        Lookup::Found(f) => assert_eq!(f.path, "/contacts/"),
        other => panic!("{other:?}"),
    }
    match find(Patch, "/contacts/abc123") {
        Lookup::WrongMethod(m) => {
            assert!(m.contains(&Get) && m.contains(&Put) && m.contains(&Delete))
        }
        other => panic!("{other:?}"),
    }
    match find(Get, "/contcts/abc123") {
        Lookup::Unknown(closest) => {
            assert!(
                closest.iter().any(|p| p == "/contacts/{contactId}"),
                "{closest:?}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// HighLevel's scope table lists most routes on continuation rows, whose scope cell is empty or `&nbsp;`, under
/// the scope of the row that opens their group. Every operation whose route the table lists has a scope, read
/// from the table where the operation's own file names none (`bearer: []`). Read here independently of the
/// generator: each route of the table, and the scope it is listed under.
#[test]
fn every_operation_the_scope_table_lists_has_a_scope() {
    let table = include_str!("../../../../reference/highlevel-openapi/Scopes.md");
    let shape = |path: &str| -> Vec<String> {
        path.trim()
            .trim_matches('/')
            .split('/')
            .map(|s| {
                if s.starts_with(':') || s.starts_with('{') {
                    "{}".to_owned()
                } else {
                    s.to_owned()
                }
            })
            .collect()
    };
    let mut listed: Vec<(String, Vec<String>, String)> = Vec::new();
    let mut current = String::new();
    for line in table.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<String> = line
            .split('|')
            .map(|c| c.replace("&nbsp;", "").trim().to_owned())
            .collect();
        if cells.len() < 6 || cells[1] == "Scope" || cells[1].starts_with("---") {
            continue;
        }
        if !cells[1].is_empty() {
            current = cells[1].clone();
        }
        if let Some((method, path)) = cells[2].split_once(' ') {
            listed.push((method.to_ascii_uppercase(), shape(path), current.clone()));
        }
    }
    assert!(listed.len() > 200, "{} routes read", listed.len());
    let mut checked = 0;
    for op in OPERATIONS {
        let rows: Vec<&str> = listed
            .iter()
            .filter(|(m, p, _)| m == op.method.as_str() && *p == shape(op.path))
            .map(|(_, _, s)| s.as_str())
            .collect();
        if rows.is_empty() {
            continue;
        }
        checked += 1;
        assert!(
            !op.scopes.is_empty(),
            "{} {} is listed under {rows:?} but has no scope",
            op.method.as_str(),
            op.path
        );
    }
    assert!(checked > 200, "{checked} operations checked");
    // Continuation rows (`&nbsp;` or empty scope cells) whose operations name no scope in their files.
    for (method, path, scope) in [
        (
            Get,
            "/locations/{locationId}/tags/{tagId}",
            "locations/tags.readonly",
        ),
        (
            Delete,
            "/locations/{locationId}/customValues/{id}",
            "locations/customValues.write",
        ),
        (
            Put,
            "/objects/{schemaKey}/records/{id}",
            "objects/record.write",
        ),
        (
            Get,
            "/social-media-posting/{locationId}/csv/{id}",
            "socialplanner/csv.readonly",
        ),
        (
            Delete,
            "/conversations/messages/email/{emailMessageId}/schedule",
            "conversations/message.write",
        ),
    ] {
        let Lookup::Found(f) = find(method, path) else {
            panic!("{path}")
        };
        assert_eq!(f.operation.scopes, &[scope], "{path}");
    }
}

/// Where HighLevel's file names no class, the operation says on what the table's class rests; where it does, it
/// says nothing.
#[test]
fn an_operation_says_when_its_class_is_the_tables_reading() {
    let op = |m, p: &str| match find(m, p) {
        Lookup::Found(f) => f.operation,
        other => panic!("{p}: {other:?}"),
    };
    let ads = op(Get, "/ad-publishing/facebook/ad-accounts");
    assert_eq!(ads.class_source, Assumed);
    let why = ads.class_basis().unwrap();
    assert!(
        why.contains("assumes Location") && why.contains("bearer"),
        "{why}"
    );
    let contacts = op(Post, "/contacts/");
    assert_eq!(contacts.class_source, ScopeTable);
    assert!(contacts.class_basis().unwrap().contains("scope table"));
    assert_eq!(op(Get, "/agent-studio/agent").class_basis(), None);
}
