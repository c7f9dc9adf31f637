//! The accepted and refused files of `table.rs`, with nutcracker's verdict
//! on each. A row whose verdict differs from memshard's says why.

/// What nutcracker says about a row, compared with memshard.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Peer {
    /// nutcracker reaches the same verdict.
    Agrees,
    /// nutcracker reaches the opposite verdict, on purpose; the text says why.
    Differs(&'static str),
}
use Peer::{Agrees, Differs};

/// A file memshard accepts.
pub(crate) struct Good {
    pub(crate) name: &'static str,
    pub(crate) yaml: &'static str,
    pub(crate) peer: Peer,
}

/// A file memshard refuses, with the line and a substring of the reason.
pub(crate) struct Bad {
    pub(crate) name: &'static str,
    pub(crate) yaml: &'static str,
    pub(crate) line: usize,
    pub(crate) reason: &'static str,
    pub(crate) peer: Peer,
}

const NOT_RESOLVED: &str = "memshard checks the listen host's syntax and resolves it when binding, not while loading";
const EXTENSION: &str = "memshard extension key: nutcracker calls it unknown";
const REDIS: &str = "memshard proxies memcached only and refuses redis pools";
const WRAP: &str = "nutcracker's nc_atoi wraps 4294967296 to 0; memshard refuses numbers above i32::MAX";

pub(crate) const GOOD: &[Good] = &[
    Good { name: "system", yaml: include_str!("../../testdata/system.yml"), peer: Agrees },
    Good { name: "sample-memcached", yaml: include_str!("../../testdata/nutcracker-memcached.yml"), peer: Agrees },
    Good { name: "sample-root", yaml: include_str!("../../testdata/nutcracker.root.yml"), peer: Agrees },
    Good { name: "sample-leaf", yaml: include_str!("../../testdata/nutcracker.leaf.yml"), peer: Agrees },
    Good { name: "multi", yaml: include_str!("../../testdata/multi.yml"), peer: Agrees },
    Good { name: "hashes", yaml: include_str!("../../testdata/hashes.yml"), peer: Agrees },
    Good { name: "quirks", yaml: include_str!("../../testdata/quirks.yml"), peer: Agrees },
    Good {
        name: "crlf-and-bom",
        yaml: "\u{feff}p:\r\n  listen: 127.0.0.1:22121\r\n  servers:\r\n   - 127.0.0.1:11211:1\r\n",
        peer: Agrees,
    },
    Good {
        name: "comments-and-blank-lines",
        yaml: "# pools\n\np:   # the pool\n  listen: 127.0.0.1:22121\n\n  servers:\n  # none yet\n  - 127.0.0.1:11211:1\n# end\n",
        peer: Agrees,
    },
    Good {
        name: "listen-port-zero",
        yaml: "p:\n  listen: 127.0.0.1:0\n  servers:\n   - a:1:1\n",
        peer: Differs("memshard's command-line contract: every listener accepts port 0 and logs the port it got"),
    },
    Good {
        name: "servers-first",
        yaml: "p:\n  servers:\n   - 127.0.0.1:11211:1\n  listen: 127.0.0.1:22121\n",
        peer: Agrees,
    },
    Good {
        name: "same-host-port-different-names",
        yaml: "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 10.0.0.1:11212:1\n   - 10.0.0.1:11212:1 b\n",
        peer: Agrees,
    },
    Good {
        name: "client-connections",
        yaml: "p:\n  listen: 127.0.0.1:22121\n  client_connections: 10\n  servers:\n   - 127.0.0.1:11211:1\n",
        // Accepted by both; only the meaning differs (memshard enforces it).
        peer: Agrees,
    },
    Good {
        name: "quoted-booleans-and-numbers",
        yaml: "p:\n  listen: 127.0.0.1:22121\n  preconnect: \"true\"\n  timeout: '400'\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Agrees,
    },
    Good {
        name: "redis-false",
        yaml: "p:\n  listen: 127.0.0.1:22121\n  redis: false\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Agrees,
    },
    Good {
        name: "list-under-listen-and-scalar-servers",
        yaml: "p:\n  listen:\n   - 127.0.0.1:22121\n  servers: 127.0.0.1:11211:1\n",
        peer: Agrees,
    },
    Good {
        name: "unix-server-named",
        yaml: "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - /tmp/mc.sock:1 a\n   - /tmp/mc2.sock:3\n",
        peer: Agrees,
    },
    Good {
        name: "tab-after-colon-and-before-comment",
        yaml: "p:\n  listen:\t127.0.0.1:22121\n  timeout: 400\t# ms\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Agrees,
    },
    Good {
        name: "lone-cr-and-nel-line-breaks",
        yaml: "p:\r  listen: 127.0.0.1:22121\u{85}  servers:\r\n   - 127.0.0.1:11211:1\r",
        peer: Agrees,
    },
    Good {
        name: "byte-order-mark-before-a-comment-line",
        yaml: "p:\n  listen: 127.0.0.1:22121\n\u{feff}# servers follow\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Agrees,
    },
    Good {
        name: "unix-perm-zero",
        yaml: "p:\n  listen: /tmp/memshard-config-test.sock 0\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Agrees,
    },
    Good {
        name: "extensions",
        yaml: "p:\n  listen: 127.0.0.1:22121\n  dns_refresh_interval: 1000\n  server_probe: false\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Differs(EXTENSION),
    },
    Good {
        name: "reuseport",
        yaml: "p:\n  listen: 127.0.0.1:22121\n  reuseport: true\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Differs("reuseport is on twemproxy's master branch, after 0.5.0"),
    },
    Good {
        name: "listen-host-unresolvable",
        yaml: "p:\n  listen: no-such-host.invalid:22121\n  servers:\n   - 127.0.0.1:11211:1\n",
        peer: Differs(NOT_RESOLVED),
    },
];

macro_rules! bad {
    ($name:literal, $line:literal, $reason:literal, $yaml:expr) => {
        bad!($name, $line, $reason, $yaml, Agrees)
    };
    ($name:literal, $line:literal, $reason:literal, $yaml:expr, $peer:expr) => {
        Bad { name: $name, yaml: $yaml, line: $line, reason: $reason, peer: $peer }
    };
}

pub(crate) const BAD: &[Bad] = &[
    // conf_validate_document
    bad!("empty-file", 1, "found 0 documents", ""),
    bad!("comment-only", 1, "found 0 documents", "# nothing\n# here\n"),
    bad!("tab-indent", 2, "invalid YAML", "p:\n\tlisten: 127.0.0.1:22121\n"),
    bad!("unknown-alias", 2, "invalid YAML", "p:\n  listen: *a\n"),
    bad!(
        "two-documents",
        5,
        "found 2 documents",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\n---\nq:\n  x: y\n"
    ),
    bad!(
        "control-character",
        3,
        "control characters are not allowed (U+0001)",
        "p:\n  listen: 127.0.0.1:22121\n  # \u{1}\n"
    ),
    bad!(
        "tab-after-dash",
        4,
        "a tab after \"-\" cannot start any token",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   -\t127.0.0.1:11211:1\n"
    ),
    bad!(
        "tab-only-line",
        3,
        "a tab at the start of a line cannot start any token",
        "p:\n  listen: 127.0.0.1:22121\n\t\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "byte-order-mark-before-a-key",
        5,
        "invalid YAML",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n\u{feff}q:\n  listen: 127.0.0.1:22122\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    // conf_validate_tokens
    bad!(
        "document-start",
        1,
        "document start \"---\" is not allowed (twemproxy rejects it)",
        "---\np:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "document-end",
        5,
        "document end \"...\" is not allowed",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n...\n"
    ),
    bad!("yaml-directive", 1, "directive \"%YAML\" is not allowed", "%YAML 1.1\n---\np:\n  listen: 127.0.0.1:22121\n"),
    bad!(
        "tag-directive",
        1,
        "directive \"%TAG\" is not allowed",
        "%TAG !e! tag:example.com,2000:\n---\np:\n  listen: x\n"
    ),
    bad!(
        "flow-sequence",
        3,
        "flow sequence \"[\" is not allowed",
        "p:\n  listen: 127.0.0.1:22121\n  servers: [127.0.0.1:11211:1]\n"
    ),
    bad!("flow-mapping", 1, "flow mapping \"{\" is not allowed", "p: {listen: 127.0.0.1:22121}\n"),
    bad!(
        "anchor",
        3,
        "anchor \"&h\" is not allowed",
        "p:\n  listen: 127.0.0.1:22121\n  hash: &h md5\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "tag",
        3,
        "tag \"!!str\" is not allowed",
        "p:\n  listen: 127.0.0.1:22121\n  hash: !!str md5\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    // conf_validate_structure
    bad!("top-level-scalar", 1, "invalid empty \"key:\" at depth 0", "memcached\n"),
    bad!("top-level-sequence", 1, "sequence at depth 0 instead of 2", "- 127.0.0.1:11211:1\n"),
    bad!("pool-is-a-scalar", 1, "invalid mapping \"key:\" at depth 1", "p: 127.0.0.1:22121\n"),
    bad!("pool-without-keys", 1, "invalid mapping \"key:\" at depth 1", "p:\n"),
    bad!("depth-3", 4, "depth greater than 2", "p:\n  listen: 127.0.0.1:22121\n  hash:\n    name: md5\n"),
    bad!(
        "sequence-of-mappings",
        4,
        "depth greater than 2",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - host: 127.0.0.1\n"
    ),
    bad!(
        "two-sequences",
        6,
        "pool \"p\" has more than one sequence directive",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n  more:\n   - 127.0.0.1:11212:1\n"
    ),
    bad!(
        "no-servers-list",
        1,
        "missing sequence directive at depth 2",
        "p:\n  listen: 127.0.0.1:22121\n  timeout: 400\n"
    ),
    bad!(
        "servers-as-scalar",
        1,
        "missing sequence directive at depth 2",
        "p:\n  listen: 127.0.0.1:22121\n  servers: 127.0.0.1:11211:1\n"
    ),
    // conf_parse: keys and empty scalars
    bad!(
        "empty-pool-name",
        1,
        "pool name is empty",
        "\"\":\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "empty-value",
        3,
        "directive \"timeout\" has an empty value",
        "p:\n  listen: 127.0.0.1:22121\n  timeout:\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "empty-server",
        4,
        "directive \"servers\" has an empty value",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   -\n"
    ),
    bad!(
        "unknown-directive",
        3,
        "directive \"sentinels\" is unknown",
        "p:\n  listen: 127.0.0.1:22121\n  sentinels: x\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "duplicate-directive",
        7,
        "directive \"timeout\" is a duplicate",
        "p:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  distribution: ketama\n  auto_eject_hosts: true\n  timeout: 400\n  timeout: 500\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "duplicate-listen",
        3,
        "directive \"listen\" is a duplicate",
        "p:\n  listen: 127.0.0.1:22121\n  listen: 127.0.0.1:22122\n  servers:\n   - a:1:1\n"
    ),
    // conf_set_bool / conf_set_num
    bad!(
        "bool-yes",
        3,
        "\"yes\" is not \"true\" or \"false\"",
        "p:\n  auto_eject_hosts: false\n  preconnect: yes\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "bool-capitalised",
        3,
        "\"True\" is not \"true\" or \"false\"",
        "p:\n  listen: 127.0.0.1:22121\n  tcpkeepalive: True\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "number-negative",
        3,
        "directive \"timeout\" value \"-5\" is not a number",
        "p:\n  listen: 127.0.0.1:22121\n  timeout: -5\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "number-fraction",
        3,
        "value \"1.5\" is not a number",
        "p:\n  listen: 127.0.0.1:22121\n  backlog: 1.5\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "number-hex",
        3,
        "value \"0x10\" is not a number",
        "p:\n  listen: 127.0.0.1:22121\n  server_retry_timeout: 0x10\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "number-wraps-in-nutcracker",
        3,
        "is not a number (it is above 2147483647)",
        "p:\n  listen: 127.0.0.1:22121\n  timeout: 4294967296\n  servers:\n   - a:1:1\n",
        Differs(WRAP)
    ),
    // hash, hash_tag, distribution
    bad!(
        "hash-unknown",
        3,
        "value \"sha1\" is not a valid hash",
        "p:\n  listen: 127.0.0.1:22121\n  hash: sha1\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "hash-uppercase",
        3,
        "value \"FNV1A_64\" is not a valid hash",
        "p:\n  listen: 127.0.0.1:22121\n  hash: FNV1A_64\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "hash-tag-one-char",
        3,
        "is not a valid hash tag string with two characters",
        "p:\n  listen: 127.0.0.1:22121\n  hash_tag: \"{\"\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "hash-tag-multibyte",
        3,
        "is not a valid hash tag string with two characters",
        "p:\n  listen: 127.0.0.1:22121\n  hash_tag: \"{é\"\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "distribution-unknown",
        3,
        "value \"vnode\" is not a valid distribution",
        "p:\n  listen: 127.0.0.1:22121\n  distribution: vnode\n  servers:\n   - a:1:1\n"
    ),
    // listen
    bad!(
        "listen-no-port",
        2,
        "has an invalid \"hostname:port\" format string",
        "p:\n  listen: 127.0.0.1\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "listen-port-too-big",
        2,
        "has an invalid port in \"hostname:port\"",
        "p:\n  listen: 127.0.0.1:65536\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "listen-bracketed-ipv6",
        2,
        "is neither an IP address nor a host name",
        "p:\n  listen: \"[::1]:22121\"\n  servers:\n   - a:1:1\n"
    ),
    bad!("listen-empty-host", 2, "the host is empty", "p:\n  listen: :22121\n  servers:\n   - a:1:1\n"),
    bad!(
        "listen-perm-too-big",
        2,
        "has an invalid file permission",
        "p:\n  listen: /tmp/memshard-config-test.sock 1000\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "listen-perm-not-octal",
        2,
        "\"abc\" is not an octal number",
        "p:\n  listen: /tmp/memshard-config-test.sock abc\n  servers:\n   - a:1:1\n",
        Differs("nutcracker's strtol reads \"abc\" as 0 (no chmod); memshard refuses a permission it cannot read")
    ),
    bad!(
        "listen-unix-path-too-long",
        2,
        "the unix socket path is 109 bytes long, the limit is 107",
        "p:\n  listen: /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n  servers:\n   - a:1:1\n"
    ),
    // servers
    bad!(
        "server-no-weight",
        4,
        "has an invalid \"hostname:port:weight [name]\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211\n"
    ),
    bad!(
        "server-zero-weight",
        12,
        "server \"10.0.0.1:11211\" has a zero weight",
        "p:\n  listen: 127.0.0.1:22121\n  hash: fnv1a_64\n  distribution: ketama\n  auto_eject_hosts: true\n  timeout: 400\n  server_retry_timeout: 2000\n  server_failure_limit: 1\n  servers:\n   - 10.0.0.2:11211:1\n   - 10.0.0.3:11211:1\n   - 10.0.0.1:11211:0\n"
    ),
    bad!(
        "server-name-with-space",
        4,
        "has an invalid weight \"1 my\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1 my server\n"
    ),
    bad!(
        "server-bad-port",
        4,
        "has an invalid port",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:memcache:1\n"
    ),
    bad!(
        "server-port-zero",
        4,
        "has an invalid port",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:0:1\n"
    ),
    bad!(
        "server-unix-path-with-colon",
        4,
        "has an invalid \"hostname:port:weight [name]\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - /tmp/a:b.sock:1\n"
    ),
    bad!(
        "server-empty-host",
        4,
        "server \":11211\" has an empty host name",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - :11211:1\n",
        Differs("nutcracker accepts an empty host and fails every request to it")
    ),
    bad!(
        "server-empty-name",
        4,
        "has an empty name after the last space",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - \"127.0.0.1:11211:1 \"\n",
        Differs("nutcracker accepts a quoted entry ending in a space and hashes it under the name \"\"")
    ),
    bad!(
        "server-weight-wraps-in-nutcracker",
        4,
        "has an invalid weight \"4294967297\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:4294967297\n",
        Differs("nutcracker's nc_atoi wraps the weight 4294967297 to 1")
    ),
    bad!(
        "server-folded-block",
        5,
        "has an invalid weight \"1\\n\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - >\n     127.0.0.1:11211:1\n"
    ),
    bad!(
        "hash-literal-block-keeps-newline",
        4,
        "value \"md5\\n\" is not a valid hash",
        "p:\n  listen: 127.0.0.1:22121\n  hash: |\n    md5\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "unknown-directive-with-list",
        4,
        "directive \"foo\" is unknown",
        "p:\n  listen: 127.0.0.1:22121\n  servers: 127.0.0.1:11211:1\n  foo:\n   - x\n   - y\n"
    ),
    bad!(
        "empty-directive-name",
        3,
        "directive name is empty",
        "p:\n  listen: 127.0.0.1:22121\n  \"\": x\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "listen-perm-not-octal-digits",
        2,
        "\"999\" is not an octal number",
        "p:\n  listen: /tmp/memshard-config-test.sock 999\n  servers:\n   - a:1:1\n",
        Differs("nutcracker's strtol reads \"999\" as 0 (no chmod)")
    ),
    // conf_validate_pool / conf_validate_server
    bad!(
        "listen-missing",
        1,
        "directive \"listen:\" is missing in pool \"p\"",
        "p:\n  servers:\n   - 127.0.0.1:11211:1\n"
    ),
    bad!(
        "server-connections-zero",
        3,
        "directive \"server_connections:\" cannot be 0",
        "p:\n  listen: 127.0.0.1:22121\n  server_connections: 0\n  servers:\n   - a:1:1\n"
    ),
    bad!("no-servers", 1, "pool \"p\" has no servers", "p:\n  listen:\n   - 127.0.0.1:22121\n"),
    bad!(
        "duplicate-server",
        5,
        "pool \"p\" has servers with same name \"127.0.0.1\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:11211:1\n   - 127.0.0.1:11211:2\n"
    ),
    bad!(
        "name-collides-with-host-port",
        5,
        "has servers with same name \"10.0.0.1:11212\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - 10.0.0.1:11212:1\n   - 10.0.0.2:11212:1 10.0.0.1:11212\n"
    ),
    bad!(
        "redis-auth",
        3,
        "directive \"redis_auth:\" is only valid for a redis pool",
        "p:\n  listen: 127.0.0.1:22121\n  redis_auth: secret\n  servers:\n   - a:1:1\n"
    ),
    // conf_post_validate
    bad!(
        "duplicate-listen-address",
        6,
        "pools \"p\" and \"q\" have the same listen address \"127.0.0.1:22121\"",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\nq:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\n"
    ),
    bad!(
        "duplicate-pool-name",
        5,
        "has pools with same name \"p\" (first on line 1)",
        "p:\n  listen: 127.0.0.1:22121\n  servers:\n   - a:1:1\np:\n  listen: 127.0.0.1:22122\n  servers:\n   - a:1:1\n"
    ),
    // memshard refuses redis pools
    bad!(
        "redis-true",
        3,
        "redis pools are not supported: memshard proxies memcached only",
        "p:\n  listen: 127.0.0.1:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n",
        Differs(REDIS)
    ),
    bad!(
        "redis-db",
        3,
        "directive \"redis_db:\" is only valid for a redis pool",
        "p:\n  listen: 127.0.0.1:22121\n  redis_db: 2\n  servers:\n   - a:1:1\n",
        Differs("nutcracker ignores redis_db on a memcached pool; memshard refuses it as a sign of a redis file")
    ),
    bad!(
        "twemproxy-sample",
        6,
        "redis pools are not supported",
        include_str!("../../testdata/nutcracker.yml"),
        Differs("the sample's pools alpha and beta are redis pools")
    ),
];
