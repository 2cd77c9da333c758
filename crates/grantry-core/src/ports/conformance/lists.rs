//! List queries: every filter operator, references, sorting, paging, children, find_all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

// ---------------------------------------------------------------- filters

/// Four providers to filter: p1 Slack|Slack, p2 slack|Bot_100%, p3 Google|Google, p4 GitHub|github.
async fn providers(store: &dyn Store) -> [Record; 4] {
    let mut p3 = provider(3, "Google", "Google")
        .data("token_endpoint", json!("https://oauth2.googleapis.com/token"))
        .data("pkce", json!("s256"));
    p3.origin = crate::Origin::Shared;
    let all = [
        provider(1, "Slack", "Slack")
            .data("token_endpoint", json!("https://slack.com/api/oauth.v2.access"))
            .data("pkce", json!("auto"))
            .data("revocation_endpoint", json!("https://slack.com/api/auth.revoke")),
        provider(2, "slack", "Bot_100%")
            .rtype("oauth1")
            .data("token_endpoint", json!("https://example.com/token"))
            .data("signature_method", json!("HMAC-SHA1")),
        p3,
        provider(4, "GitHub", "github").rtype("generic").data("revocation_endpoint", json!("")),
    ];
    store.insert(&all).await.unwrap();
    // Another kind, which no provider query may return.
    insert(store, &[&scope(5, &all[0], "Slack")]).await;
    all
}

/// `eq` compares exactly (case matters); `ne` also matches records without the field.
pub async fn filter_eq_and_ne(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("namespace"), Op::Eq, text("Slack")).await, ids(&[&p1]));
    assert_eq!(q(col("name"), Op::Eq, text("Slack")).await, ids(&[&p1]), "scopes are not providers");
    assert_eq!(q(col("name"), Op::Ne, text("Slack")).await, ids(&[&p2, &p3, &p4]));
    assert_eq!(q(col("type"), Op::Eq, text("oauth2")).await, ids(&[&p1, &p3]));
    assert_eq!(q(col("origin"), Op::Eq, text("shared")).await, ids(&[&p3]));
    assert_eq!(q(col("origin"), Op::Ne, text("shared")).await, ids(&[&p1, &p2, &p4]));
    assert_eq!(q(col("id"), Op::Eq, text(p2.id.as_str())).await, ids(&[&p2]));
    assert_eq!(q(col("created_at"), Op::Eq, text(&timestamp(at(2_000)))).await, ids(&[&p2]));
    assert_eq!(q(col("updated_at"), Op::Ne, text(&timestamp(at(2_000)))).await, ids(&[&p1, &p3, &p4]));
    assert_eq!(q(Target::Data("pkce"), Op::Eq, text("auto")).await, ids(&[&p1]));
    assert_eq!(q(Target::Data("pkce"), Op::Eq, text("AUTO")).await, Vec::<Id>::new());
    assert_eq!(q(Target::Data("pkce"), Op::Ne, text("auto")).await, ids(&[&p2, &p3, &p4]), "missing is not `auto`");
    assert_eq!(q(Target::Data("revocation_endpoint"), Op::Eq, text("")).await, ids(&[&p4]));
}

/// `contains`, `starts_with`, `ends_with`: ASCII case ignored, `%` and `_` literal, missing fields never match.
pub async fn filter_contains_starts_ends_with(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("name"), Op::Contains, text("lac")).await, ids(&[&p1]));
    assert_eq!(q(col("name"), Op::Contains, text("LAC")).await, ids(&[&p1]));
    assert_eq!(q(col("namespace"), Op::StartsWith, text("sl")).await, ids(&[&p1, &p2]));
    assert_eq!(q(col("namespace"), Op::StartsWith, text("lack")).await, Vec::<Id>::new());
    assert_eq!(q(col("name"), Op::EndsWith, text("HUB")).await, ids(&[&p4]));
    assert_eq!(q(col("name"), Op::EndsWith, text("git")).await, Vec::<Id>::new());
    assert_eq!(q(col("name"), Op::Contains, text("%")).await, ids(&[&p2]), "% is literal");
    assert_eq!(q(col("name"), Op::Contains, text("t_")).await, ids(&[&p2]), "_ is literal");
    assert_eq!(q(col("name"), Op::StartsWith, text("_")).await, Vec::<Id>::new());
    assert_eq!(q(Target::Data("token_endpoint"), Op::Contains, text("GoogleAPIs")).await, ids(&[&p3]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::StartsWith, text("https://")).await, ids(&[&p1, &p2, &p3]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::EndsWith, text("/token")).await, ids(&[&p2, &p3]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::Contains, text("")).await, ids(&[&p1, &p2, &p3]));

    let cafe = provider(9, "Café", "Café");
    insert(store, &[&cafe]).await;
    assert_eq!(q(col("name"), Op::Contains, text("CAFé")).await, ids(&[&cafe]));
    assert_eq!(q(col("name"), Op::Contains, text("CAFÉ")).await, Vec::<Id>::new(), "only ASCII case is ignored");
}

/// `gt`, `gte`, `lt`, `lte` compare text by bytes (upper case before lower case), times in time order.
pub async fn filter_ordering_operators(store: &dyn Store) {
    // Names in byte order: "Bot_100%" < "Google" < "Slack" < "github".
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("name"), Op::Gt, text("Google")).await, ids(&[&p1, &p4]));
    assert_eq!(q(col("name"), Op::Gte, text("Google")).await, ids(&[&p1, &p3, &p4]));
    assert_eq!(q(col("name"), Op::Lt, text("Google")).await, ids(&[&p2]));
    assert_eq!(q(col("name"), Op::Lte, text("Google")).await, ids(&[&p2, &p3]));
    assert_eq!(q(col("created_at"), Op::Gt, text(&timestamp(at(2_000)))).await, ids(&[&p3, &p4]));
    assert_eq!(q(col("created_at"), Op::Gte, text(&timestamp(at(2_000)))).await, ids(&[&p2, &p3, &p4]));
    assert_eq!(q(col("created_at"), Op::Lt, text(&timestamp(at(2_000)))).await, ids(&[&p1]));
    assert_eq!(q(col("created_at"), Op::Lte, text(&timestamp(at(2_000)))).await, ids(&[&p1, &p2]));
    assert_eq!(q(Target::Data("token_endpoint"), Op::Lt, text("z")).await, ids(&[&p1, &p2, &p3]), "missing never");
    assert_eq!(q(Target::Data("pkce"), Op::Gte, text("b")).await, ids(&[&p3]));

    // A timestamp field of the data document compares the same way.
    let early = authorization(10, "", "early").data("expires_at", json!(timestamp(at(1_000))));
    let late = authorization(11, "", "late").data("expires_at", json!(timestamp(at(90_000))));
    let never = authorization(12, "", "never");
    insert(store, &[&early, &late, &never]).await;
    let cut = text(&timestamp(at(60_000)));
    let qa = |op, value| matching(store, Kind::Authorization, vec![cond(Target::Data("expires_at"), op, value)]);
    assert_eq!(qa(Op::Lt, cut.clone()).await, ids(&[&early]));
    assert_eq!(qa(Op::Gt, cut).await, ids(&[&late]));
}

/// `in` matches any of the listed values, exactly.
pub async fn filter_in(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let q = |target, op, value| matching(store, Kind::Provider, vec![cond(target, op, value)]);
    assert_eq!(q(col("namespace"), Op::In, list_of(&["Slack", "Google", "Nope"])).await, ids(&[&p1, &p3]));
    assert_eq!(q(col("namespace"), Op::In, list_of(&["Slack"])).await, ids(&[&p1]));
    assert_eq!(q(col("namespace"), Op::In, list_of(&["SLACK", "google"])).await, Vec::<Id>::new());
    assert_eq!(q(col("id"), Op::In, list_of(&[p2.id.as_str(), p4.id.as_str()])).await, ids(&[&p2, &p4]));
    assert_eq!(q(Target::Data("pkce"), Op::In, list_of(&["auto", "s256"])).await, ids(&[&p1, &p3]));
    assert_eq!(q(Target::Data("pkce"), Op::In, list_of(&["off"])).await, Vec::<Id>::new());
}

/// `exists`: set and not empty; `exists=false` is the complement. On secrets: whether the secret is set.
pub async fn filter_exists(store: &dyn Store) {
    let [p1, p2, p3, p4] = providers(store).await;
    let yes = FilterValue::Bool(true);
    let no = FilterValue::Bool(false);
    let q = |target, value| matching(store, Kind::Provider, vec![cond(target, Op::Exists, value)]);
    assert_eq!(q(Target::Data("pkce"), yes.clone()).await, ids(&[&p1, &p3]));
    assert_eq!(q(Target::Data("pkce"), no.clone()).await, ids(&[&p2, &p4]));
    assert_eq!(q(Target::Data("revocation_endpoint"), yes.clone()).await, ids(&[&p1]), "empty is not set");
    assert_eq!(q(Target::Data("revocation_endpoint"), no.clone()).await, ids(&[&p2, &p3, &p4]));
    assert_eq!(q(col("namespace"), yes.clone()).await, ids(&[&p1, &p2, &p3, &p4]));

    let c1 = client(10, &p1, "both").secret("identifier", "v1:i").secret("secret", "v1:s");
    let c2 = client(11, &p1, "identifier only").secret("identifier", "v1:i");
    let c3 = client(12, &p1, "none");
    insert(store, &[&c1, &c2, &c3]).await;
    let qc = |target, value| matching(store, Kind::Client, vec![cond(target, Op::Exists, value)]);
    assert_eq!(qc(Target::Secret("secret"), yes.clone()).await, ids(&[&c1]));
    assert_eq!(qc(Target::Secret("secret"), no.clone()).await, ids(&[&c2, &c3]));
    assert_eq!(qc(Target::Secret("identifier"), yes.clone()).await, ids(&[&c1, &c2]));
    assert_eq!(qc(Target::Secret("identifier"), no.clone()).await, ids(&[&c3]));

    let named = authorization(20, "Acme", "named");
    let bare = authorization(21, "", "bare");
    insert(store, &[&named, &bare]).await;
    let qa = |value| matching(store, Kind::Authorization, vec![cond(col("namespace"), Op::Exists, value)]);
    assert_eq!(qa(yes).await, ids(&[&named]));
    assert_eq!(qa(no).await, ids(&[&bare]), "an empty namespace does not exist");
}

/// Boolean fields compare as booleans; `ne` also matches a record without the field.
pub async fn filter_booleans(store: &dyn Store) {
    let on = connection(1, "Acme", "on").data("authorization_handler", json!(true));
    let off = connection(2, "Acme", "off").data("authorization_handler", json!(false));
    let unset = connection(3, "Acme", "unset");
    insert(store, &[&on, &off, &unset]).await;
    let q = |op, value| matching(store, Kind::Connection, vec![cond(Target::Data("authorization_handler"), op, value)]);
    assert_eq!(q(Op::Eq, FilterValue::Bool(true)).await, ids(&[&on]));
    assert_eq!(q(Op::Eq, FilterValue::Bool(false)).await, ids(&[&off]));
    assert_eq!(q(Op::Ne, FilterValue::Bool(true)).await, ids(&[&off, &unset]));
    assert_eq!(q(Op::Ne, FilterValue::Bool(false)).await, ids(&[&on, &unset]));
    assert_eq!(q(Op::Exists, FilterValue::Bool(true)).await, ids(&[&on, &off]), "false is set");
    assert_eq!(q(Op::Exists, FilterValue::Bool(false)).await, ids(&[&unset]));
    assert_eq!(q(Op::In, FilterValue::Bools(vec![true, false])).await, ids(&[&on, &off]), "in on booleans");
    assert_eq!(q(Op::In, FilterValue::Bools(vec![false])).await, ids(&[&off]));

    let yes = authorization(10, "", "yes").data("authorized", json!(true)).data("status", json!("authorized"));
    let no = authorization(11, "", "no").data("authorized", json!(false)).data("status", json!("expired"));
    insert(store, &[&yes, &no]).await;
    let conditions = vec![
        cond(Target::Data("authorized"), Op::Eq, FilterValue::Bool(false)),
        cond(Target::Data("status"), Op::Eq, text("expired")),
    ];
    assert_eq!(matching(store, Kind::Authorization, conditions).await, ids(&[&no]));
}

/// Conditions on referenced records, at any depth, by field or id; on a list
/// of references a condition holds when any referenced record satisfies it, and
/// a record without that reference satisfies none (not even `ne`).
pub async fn filter_by_reference(store: &dyn Store) {
    let p1 = provider(1, "Slack", "Slack");
    let p2 = provider(2, "Google", "Google");
    let s1 = scope(3, &p1, "chat:write");
    let s2 = scope(4, &p1, "users:read");
    let s3 = scope(5, &p2, "email");
    let c1 = client(6, &p1, "main");
    let c2 = client(7, &p2, "web");
    let a1 = authorization(8, "Acme", "slack")
        .refs("client", &[&c1.id])
        .refs("scopes", &[&s1.id, &s2.id])
        .secret("access_token", "v1:at");
    let a2 = authorization(9, "Acme", "google").refs("client", &[&c2.id]).refs("scopes", &[&s3.id]);
    let a3 = authorization(10, "", "basic").rtype("basic");
    let k1 = connection(11, "Acme", "slack").refs("authorization", &[&a1.id]);
    let k2 = connection(12, "Acme", "basic").refs("authorization", &[&a3.id]);
    let k3 = connection(13, "Acme", "open");
    insert(store, &[&p1, &p2, &s1, &s2, &s3, &c1, &c2, &a1, &a2, &a3, &k1, &k2, &k3]).await;

    let provider_of = |inner| via("provider", Kind::Provider, inner);
    let client_of = |inner| via("client", Kind::Client, inner);
    let scopes_of = |inner| via("scopes", Kind::Scope, inner);
    let authorization_of = |inner| via("authorization", Kind::Authorization, inner);
    let q = |kind, target, op, value| matching(store, kind, vec![cond(target, op, value)]);

    assert_eq!(q(Kind::Client, provider_of(col("namespace")), Op::Eq, text("Slack")).await, ids(&[&c1]));
    assert_eq!(q(Kind::Client, provider_of(col("id")), Op::Eq, text(p2.id.as_str())).await, ids(&[&c2]));
    assert_eq!(q(Kind::Scope, provider_of(col("name")), Op::Eq, text("Google")).await, ids(&[&s3]));
    assert_eq!(q(Kind::Scope, provider_of(col("name")), Op::StartsWith, text("sl")).await, ids(&[&s1, &s2]));
    let deep = client_of(provider_of(col("name")));
    assert_eq!(q(Kind::Authorization, deep, Op::Eq, text("Slack")).await, ids(&[&a1]));
    let names = scopes_of(col("name"));
    assert_eq!(q(Kind::Authorization, names.clone(), Op::Eq, text("users:read")).await, ids(&[&a1]));
    assert_eq!(q(Kind::Authorization, names.clone(), Op::Eq, text("email")).await, ids(&[&a2]));
    assert_eq!(q(Kind::Authorization, names.clone(), Op::Ne, text("chat:write")).await, ids(&[&a1, &a2]));
    assert_eq!(q(Kind::Authorization, names, Op::In, list_of(&["chat:write", "email"])).await, ids(&[&a1, &a2]));
    let client_name = client_of(col("name"));
    assert_eq!(q(Kind::Authorization, client_name.clone(), Op::In, list_of(&["main", "web"])).await, ids(&[&a1, &a2]));
    assert_eq!(q(Kind::Authorization, client_name, Op::Ne, text("main")).await, ids(&[&a2]), "a3 has no client");
    let deepest = authorization_of(client_of(provider_of(col("namespace"))));
    assert_eq!(q(Kind::Connection, deepest, Op::Eq, text("Slack")).await, ids(&[&k1]));
    let auth_name = authorization_of(col("name"));
    assert_eq!(q(Kind::Connection, auth_name, Op::Ne, text("x")).await, ids(&[&k1, &k2]), "k3 has no authorization");
    let auth_namespace = authorization_of(col("namespace"));
    assert_eq!(q(Kind::Connection, auth_namespace, Op::Exists, FilterValue::Bool(false)).await, ids(&[&k2]));
    let token = authorization_of(Target::Secret("access_token"));
    assert_eq!(q(Kind::Connection, token.clone(), Op::Exists, FilterValue::Bool(true)).await, ids(&[&k1]));
    assert_eq!(q(Kind::Connection, token, Op::Exists, FilterValue::Bool(false)).await, ids(&[&k2]));
}

/// Conditions are combined with AND, and a list is of one kind.
pub async fn filter_conditions_combine(store: &dyn Store) {
    let [p1, p2, _, _] = providers(store).await;
    let both = |a, b| matching(store, Kind::Provider, vec![a, b]);
    let starts_sl = || cond(col("namespace"), Op::StartsWith, text("sl"));
    assert_eq!(both(starts_sl(), cond(col("type"), Op::Eq, text("oauth1"))).await, ids(&[&p2]));
    assert_eq!(both(starts_sl(), cond(col("type"), Op::Eq, text("oauth2"))).await, ids(&[&p1]));
    assert_eq!(both(starts_sl(), cond(col("type"), Op::Eq, text("generic"))).await, Vec::<Id>::new());
    assert_eq!(matching(store, Kind::Provider, vec![]).await.len(), 4);
    assert_eq!(matching(store, Kind::Scope, vec![cond(col("name"), Op::Eq, text("Slack"))]).await.len(), 1);
}

// ---------------------------------------------------------------- sorting, paging, children, find_all

async fn sortable(store: &dyn Store) {
    // (n, namespace, name, created at ms, pkce)
    let rows = [
        (5, "B", "x", 1_000, None),
        (3, "A", "y", 3_000, None),
        (4, "B", "y", 2_000, Some("off")),
        (1, "A", "x", 2_000, Some("s256")),
        (2, "C", "x", 1_000, Some("auto")),
    ];
    for (n, namespace, name, created, pkce) in rows {
        let mut p = provider(n, namespace, name).created(created);
        if let Some(pkce) = pkce {
            p = p.data("pkce", json!(pkce));
        }
        insert(store, &[&p]).await;
    }
}

pub(super) fn numbered(ns: &[u32]) -> Vec<Id> {
    ns.iter().map(|n| id(*n)).collect()
}

/// Sorts apply in order; ties fall back to the id, ascending, whatever the direction.
pub async fn sort_ascending_descending_with_ties(store: &dyn Store) {
    sortable(store).await;
    let order = |sorts| async move { listed(store, Kind::Provider, sorts, 1, 100).await.0 };
    assert_eq!(order(vec![]).await, numbered(&[1, 2, 3, 4, 5]), "no sort: by id");
    assert_eq!(order(vec![asc(col("namespace"))]).await, numbered(&[1, 3, 4, 5, 2]));
    assert_eq!(order(vec![desc(col("namespace"))]).await, numbered(&[2, 4, 5, 1, 3]));
    assert_eq!(order(vec![asc(col("namespace")), desc(col("name"))]).await, numbered(&[3, 1, 4, 5, 2]));
    assert_eq!(order(vec![desc(col("created_at"))]).await, numbered(&[3, 1, 4, 2, 5]));
    assert_eq!(order(vec![asc(col("created_at"))]).await, numbered(&[2, 5, 1, 4, 3]));
    assert_eq!(order(vec![desc(col("id"))]).await, numbered(&[5, 4, 3, 2, 1]));
    assert_eq!(order(vec![asc(col("name")), desc(col("created_at"))]).await, numbered(&[1, 2, 5, 3, 4]));
}

/// Sorting by a data field: records without it come first ascending, last descending.
pub async fn sort_by_data_field_nulls_first(store: &dyn Store) {
    sortable(store).await;
    let order = |sorts| async move { listed(store, Kind::Provider, sorts, 1, 100).await.0 };
    assert_eq!(order(vec![asc(Target::Data("pkce"))]).await, numbered(&[3, 5, 2, 4, 1]));
    assert_eq!(order(vec![desc(Target::Data("pkce"))]).await, numbered(&[1, 4, 2, 3, 5]));
}

/// `page` counts from 1, `per_page` records each; the total is of all matches, on every page.
pub async fn paging_and_totals(store: &dyn Store) {
    for n in 1..=7 {
        let namespace = if n % 2 == 0 { "even" } else { "odd" };
        insert(store, &[&connection(n, namespace, &format!("c{n}")).created(i64::from(10 - n) * 1000)]).await;
    }
    let by_created = || vec![asc(col("created_at"))];
    assert_eq!(listed(store, Kind::Connection, by_created(), 1, 3).await, (numbered(&[7, 6, 5]), 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 2, 3).await, (numbered(&[4, 3, 2]), 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 3, 3).await, (numbered(&[1]), 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 4, 3).await, (vec![], 7));
    assert_eq!(listed(store, Kind::Connection, by_created(), 1, 100).await.0.len(), 7);

    let odd = || vec![cond(col("namespace"), Op::Eq, text("odd"))];
    let page = |n| async move {
        let (items, total) = store.list(Kind::Connection, &query(odd(), vec![], n, 3)).await.unwrap();
        (ids_of(&items), total)
    };
    assert_eq!(page(1).await, (numbered(&[1, 3, 5]), 4));
    assert_eq!(page(2).await, (numbered(&[7]), 4));
    assert_eq!(page(3).await, (vec![], 4));
}

/// `children` finds records by their key parent (a scope's or client's provider), per kind.
pub async fn children_by_key_parent(store: &dyn Store) {
    let p1 = provider(1, "A", "one");
    let p2 = provider(2, "A", "two");
    let p3 = provider(3, "A", "three");
    let s1 = scope(4, &p1, "a");
    let s2 = scope(5, &p1, "b");
    let s3 = scope(6, &p2, "a");
    let c1 = client(7, &p1, "main");
    let c2 = client(8, &p3, "main");
    let a = authorization(9, "", "x").refs("client", &[&c1.id]).refs("scopes", &[&s1.id]);
    insert(store, &[&p1, &p2, &p3, &s1, &s2, &s3, &c1, &c2, &a]).await;
    let kids = |kind, parents: &[&Record]| {
        let parents = ids(parents);
        async move { sorted(store.children(kind, &parents).await.unwrap()) }
    };
    assert_eq!(kids(Kind::Scope, &[&p1, &p2]).await, ids(&[&s1, &s2, &s3]));
    assert_eq!(kids(Kind::Scope, &[&p2]).await, ids(&[&s3]));
    assert_eq!(kids(Kind::Scope, &[&p3]).await, Vec::<Id>::new());
    assert_eq!(kids(Kind::Client, &[&p1, &p3]).await, ids(&[&c1, &c2]));
    assert_eq!(kids(Kind::Scope, &[]).await, Vec::<Id>::new());
    assert_eq!(kids(Kind::Authorization, &[&c1, &s1]).await, Vec::<Id>::new(), "only key parents count");
}

/// `find_all` returns every match, oldest first, ties by id.
pub async fn find_all_in_creation_order(store: &dyn Store) {
    let p = provider(1, "A", "p").created(0);
    insert(store, &[&p]).await;
    for (n, name, created) in [(6, "f", 3_000), (2, "b", 5_000), (4, "d", 1_000), (3, "c", 3_000), (5, "e", 2_000)] {
        insert(store, &[&scope(n, &p, name).created(created)]).await;
    }
    let all = store.find_all(Kind::Scope, &[]).await.unwrap();
    assert_eq!(ids_of(&all), numbered(&[4, 5, 3, 6, 2]));
    let some = store.find_all(Kind::Scope, &[cond(col("name"), Op::In, list_of(&["b", "c", "d"]))]).await.unwrap();
    assert_eq!(ids_of(&some), numbered(&[4, 3, 2]));
    assert_same_record(&some[0], &scope(4, &p, "d").created(1_000));
    assert_eq!(ids_of(&store.find_all(Kind::Provider, &[]).await.unwrap()), ids(&[&p]));
    assert!(store.find_all(Kind::Client, &[]).await.unwrap().is_empty());
}
