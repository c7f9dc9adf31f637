//! `delete <key> [0] [noreply]`.

use super::{Ctx, DecodeResult, Request, key_ok, noreply_token};
use crate::error::msg;
use crate::line::Tokens;
use bytes::BufMut;

/// A delete request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete<'a> {
    /// The key.
    pub key: &'a [u8],
    /// Suppress the reply.
    pub noreply: bool,
}

impl Delete<'_> {
    /// Writes the request line.
    pub fn encode<B: BufMut>(&self, out: &mut B) {
        out.put_slice(b"delete ");
        out.put_slice(self.key);
        if self.noreply {
            out.put_slice(b" noreply");
        }
        out.put_slice(b"\r\n");
    }
}

pub(super) fn decode<'a>(t: &Tokens<'a>, ctx: &Ctx<'a, '_>) -> DecodeResult<'a> {
    let n = t.ntokens();
    if !(3..=5).contains(&n) {
        return Err(ctx.err(msg::ERROR));
    }
    let mut noreply = false;
    if n > 3 {
        // The legacy hold time is accepted only as "0".
        let hold_is_zero = t.at(2) == b"0";
        noreply = noreply_token(t);
        let valid = (n == 4 && (hold_is_zero || noreply)) || (n == 5 && hold_is_zero && noreply);
        if !valid {
            return Err(ctx.err(msg::DELETE_USAGE).noreply(noreply));
        }
    }
    let key = t.at(1);
    if !key_ok(key) {
        return Err(ctx.err(msg::BAD_FORMAT).noreply(noreply));
    }
    Ok(Some((Request::Delete(Delete { key, noreply }), ctx.line_len)))
}

#[cfg(test)]
mod tests {
    use crate::request::{Decoder, Request};

    #[test]
    fn forms() {
        let d = Decoder::default();
        for (line, noreply) in [
            (&b"delete a\r\n"[..], false),
            (b"delete a 0\r\n", false),
            (b"delete a noreply\r\n", true),
            (b"delete a 0 noreply\r\n", true),
        ] {
            let (req, _) = d.decode(line).unwrap().unwrap();
            let Request::Delete(del) = req else { panic!() };
            assert_eq!(del.noreply, noreply);
        }
        assert_eq!(
            d.decode(b"delete a 5\r\n").unwrap_err().reply,
            Some("CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]")
        );
        assert_eq!(d.decode(b"delete\r\n").unwrap_err().reply, Some("ERROR"));
    }
}
