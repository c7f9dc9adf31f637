//! memshard-bench
