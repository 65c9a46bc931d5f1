//! Turns network errors into bounded reason codes: refused, DNS, timeout, TLS, reset…

use std::error::Error as StdError;
use std::io;

/// The reason code for an I/O error met while connecting or reading.
pub fn classify_io(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection_refused",
        io::ErrorKind::TimedOut => "timeout",
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => "connection_reset",
        io::ErrorKind::UnexpectedEof => "connection_closed",
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => "unreachable",
        _ => "io_error",
    }
}

/// Walks an error's source chain and names the first cause it recognises.
pub(crate) fn classify_chain(err: &(dyn StdError + 'static)) -> &'static str {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    let mut fallback = "connect_error";
    while let Some(e) = cur {
        if e.downcast_ref::<rustls::Error>().is_some() {
            return "tls_error";
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            let code = classify_io(io);
            if code != "io_error" {
                return code;
            }
            // A rustls error wrapped in an io::Error shows only through its text.
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return "tls_error";
            }
            fallback = "io_error";
        }
        let text = e.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return "dns_error";
        }
        if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
            return "tls_error";
        }
        cur = e.source();
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_to_codes() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify_io(&refused), "connection_refused");
        assert_eq!(classify_chain(&refused), "connection_refused");
        let other = io::Error::other("failed to lookup address information");
        assert_eq!(classify_chain(&other), "dns_error");
    }
}
