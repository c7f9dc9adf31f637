//! The client side: one task per client connection decodes its requests
//! (`frontend`) and routes each one (`forward`): answered locally, sent to
//! one server, split over several, or fanned out to all.

pub(crate) mod forward;
pub(crate) mod frontend;
