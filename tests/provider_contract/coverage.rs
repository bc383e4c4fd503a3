//! The cases above against the crate's provider list: a provider added to
//! the list without a case here fails this test.

use tower_webhook::{Builtin, BuiltinVisitor, for_each_builtin};

/// The name of every built-in provider compiled in.
struct Names(Vec<&'static str>);

impl BuiltinVisitor for Names {
    fn visit<B: Builtin>(&mut self) {
        self.0
            .push(B::from_settings("https://receiver.example/webhooks").name());
    }
}

#[test]
fn every_builtin_provider_has_a_case() {
    let mut builtins = Names(Vec::new());
    for_each_builtin(&mut builtins);
    let cases = crate::case_names();
    let missing: Vec<_> = builtins
        .0
        .iter()
        .filter(|name| !cases.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "built-in providers without a contract case: {missing:?}"
    );
    assert!(
        builtins.0.len() >= 17,
        "the provider list: {:?}",
        builtins.0
    );
}
