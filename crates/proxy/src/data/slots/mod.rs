//! Answer slots: every request a client sends takes a slot in that client's
//! ordered queue (`order`), filled when its answer arrives, so answers go
//! back in request order whatever order the servers answer in; a request
//! sent to several servers fills its slot once every part came back
//! (`merge`).

pub(crate) mod merge;
pub(crate) mod order;
