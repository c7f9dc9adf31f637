//! Property tests: loading never panics, on arbitrary text and on valid
//! configurations mutated at random; errors always point inside the text.

use memshard_config::fuzzing::check_from_yaml;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    include_str!("../testdata/system.yml"),
    include_str!("../testdata/multi.yml"),
    include_str!("../testdata/quirks.yml"),
    include_str!("../testdata/nutcracker.yml"),
];

/// Characters that matter to YAML and to twemproxy's value parsers.
const ALPHABET: &[char] = &[
    ' ', ' ', ' ', '\n', '\n', '\r', '\t', ':', ':', '-', '#', '"', '\'', '[', ']', '{', '}', ',', '&', '*', '!', '%',
    '|', '>', '?', '/', '.', '@', '`', '\\', '0', '1', '9', 'a', 'z', 'é', '\u{feff}', '\u{0}', '\u{85}',
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(ALPHABET), 0..200).prop_map(|v| v.into_iter().collect())
}

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Indent(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1..8usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), "[ :\\-#\"'\\[\\]{},&*!%|>?a-z0-9\\n]{1,6}").prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), 0..4usize).prop_map(|(l, n)| Edit::Indent(l, n)),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
    let len = lines.len();
    match edit {
        Edit::Delete(at, n) => {
            let at = at % (chars.len() + 1);
            let end = (at + n).min(chars.len());
            chars[..at].iter().chain(&chars[end..]).collect()
        }
        Edit::Insert(at, s) => {
            let at = at % (chars.len() + 1);
            chars[..at].iter().collect::<String>() + s + &chars[at..].iter().collect::<String>()
        }
        Edit::DuplicateLine(l) => {
            let line = lines[l % len].clone();
            lines.insert(l % len, line);
            lines.join("\n")
        }
        Edit::SwapLines(a, b) => {
            lines.swap(a % len, b % len);
            lines.join("\n")
        }
        Edit::Indent(l, n) => {
            lines[l % len].insert_str(0, &" ".repeat(*n));
            lines.join("\n")
        }
    }
}

/// 2000 cases per property, or `PROPTEST_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check_from_yaml(text.as_bytes());
    }

    #[test]
    fn yaml_like_text_never_panics(text in yamlish()) {
        check_from_yaml(text.as_bytes());
    }

    #[test]
    fn mutated_configs_never_panic(seed in 0..SEEDS.len(), edits in prop::collection::vec(edit(), 1..5)) {
        let text = edits.iter().fold(SEEDS[seed].to_owned(), |t, e| apply(&t, e));
        check_from_yaml(text.as_bytes());
    }
}

#[test]
fn seeds_pass_the_invariants() {
    for seed in SEEDS {
        check_from_yaml(seed.as_bytes());
    }
}
