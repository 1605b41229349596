//! Value types that validate on construction: once you hold one, it is valid.
//!
//! Each parses from untrusted input (`parse`/`new`) and deserializes through the same
//! check, so an event or command can never carry an invalid value. Errors name the
//! rule that failed; they never repeat an e-mail address.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("coin symbol {0:?} must be 1 to 15 characters of A-Z and 0-9")]
    CoinSymbol(String),
    #[error("coin id {0:?} must be 1 to 64 characters of a-z, 0-9 and '-'")]
    CoinId(String),
    #[error("quote currency {0:?} must be 2 to 10 characters of A-Z and 0-9")]
    QuoteCurrency(String),
    #[error("{what} must not be negative")]
    Negative { what: &'static str },
    #[error("{what} has more than {max} decimal places")]
    TooPrecise { what: &'static str, max: u32 },
    #[error("{what} must not exceed {max}")]
    TooLarge { what: &'static str, max: Decimal },
    #[error("the e-mail address is not valid")]
    Email,
    #[error("{what} must be {min} to {max} characters, without control characters")]
    Text {
        what: &'static str,
        min: usize,
        max: usize,
    },
    #[error("username must be 3 to 32 characters of a-z, 0-9, '.', '_' and '-'")]
    Username,
    #[error("invalid alert condition: {0}")]
    Condition(&'static str),
}

/// Implements serde through a validating constructor: `Deserialize` runs the check.
macro_rules! validated_serde {
    ($type:ident, $inner:ty, $construct:path) => {
        impl Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.0.serialize(serializer)
            }
        }
        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <$inner>::deserialize(deserializer)?;
                $construct(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A ticker symbol such as `BTC`: upper-cased on the way in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoinSymbol(String);

impl CoinSymbol {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValueError> {
        let symbol = raw.as_ref().trim().to_ascii_uppercase();
        let valid = (1..=15).contains(&symbol.len())
            && symbol
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(symbol))
        } else {
            Err(ValueError::CoinSymbol(truncate(raw.as_ref())))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
validated_serde!(CoinSymbol, String, CoinSymbol::parse);

impl fmt::Display for CoinSymbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A CoinGecko-style coin id such as `bitcoin` or `usd-coin`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CoinId(String);

impl CoinId {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValueError> {
        let id = raw.as_ref().trim().to_ascii_lowercase();
        let valid = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(id))
        } else {
            Err(ValueError::CoinId(truncate(raw.as_ref())))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
validated_serde!(CoinId, String, CoinId::parse);

impl fmt::Display for CoinId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// The currency a price is quoted in: `USD`, `EUR`, `USDT`, `BTC`…
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuoteCurrency(String);

impl QuoteCurrency {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValueError> {
        let code = raw.as_ref().trim().to_ascii_uppercase();
        let valid = (2..=10).contains(&code.len())
            && code
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(code))
        } else {
            Err(ValueError::QuoteCurrency(truncate(raw.as_ref())))
        }
    }

    pub fn usd() -> Self {
        Self("USD".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
validated_serde!(QuoteCurrency, String, QuoteCurrency::parse);

impl fmt::Display for QuoteCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Most decimal places a quantity, price or amount may have (ETH has 18).
pub const MAX_SCALE: u32 = 18;

/// Largest quantity or price: keeps `quantity × price` and sums of many trades far
/// inside `Decimal`'s range, so accounting arithmetic cannot overflow on valid input.
pub fn max_magnitude() -> Decimal {
    Decimal::from(1_000_000_000_000u64)
}

fn check_decimal(value: Decimal, what: &'static str) -> Result<Decimal, ValueError> {
    if value.is_sign_negative() && !value.is_zero() {
        return Err(ValueError::Negative { what });
    }
    let value = value.normalize();
    if value.scale() > MAX_SCALE {
        return Err(ValueError::TooPrecise {
            what,
            max: MAX_SCALE,
        });
    }
    if value > max_magnitude() {
        return Err(ValueError::TooLarge {
            what,
            max: max_magnitude(),
        });
    }
    // `-0` becomes `0`.
    Ok(value.abs())
}

macro_rules! decimal_value {
    ($(#[$doc:meta])* $type:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $type(Decimal);

        impl $type {
            pub fn new(value: Decimal) -> Result<Self, ValueError> {
                check_decimal(value, $what).map(Self)
            }

            pub fn value(self) -> Decimal {
                self.0
            }

            pub fn is_zero(self) -> bool {
                self.0.is_zero()
            }
        }

        impl fmt::Display for $type {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl Serialize for $type {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                rust_decimal::serde::str::serialize(&self.0, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw: Decimal = rust_decimal::serde::str::deserialize(deserializer)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

decimal_value!(
    /// An amount of a coin: non-negative, at most 18 decimal places.
    Quantity,
    "quantity"
);
decimal_value!(
    /// A unit price in a quote currency: non-negative, at most 18 decimal places.
    Price,
    "price"
);
decimal_value!(
    /// A sum of money in a quote currency (fees, cost bases): non-negative.
    Amount,
    "amount"
);

/// An e-mail address: one `@`, a local part, a dotted domain; stored lower-cased.
/// Good enough to catch typos; the confirmation mail is the real check.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValueError> {
        let email = raw.as_ref().trim().to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return Err(ValueError::Email);
        };
        let valid = email.len() <= 254
            && !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            Err(ValueError::Email)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// By hand: an address is personal data, kept out of logs that print a command.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}
validated_serde!(Email, String, Email::parse);

/// A login name: 3 to 32 characters of `a-z 0-9 . _ -`, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValueError> {
        let name = raw.as_ref().trim().to_ascii_lowercase();
        let valid = (3..=32).contains(&name.len())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if valid {
            Ok(Self(name))
        } else {
            Err(ValueError::Username)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
validated_serde!(Username, String, Username::parse);

fn check_text(raw: &str, what: &'static str, min: usize, max: usize) -> Result<String, ValueError> {
    let text = raw.trim();
    let length = text.chars().count();
    if (min..=max).contains(&length) && !text.chars().any(char::is_control) {
        Ok(text.to_owned())
    } else {
        Err(ValueError::Text { what, min, max })
    }
}

macro_rules! text_value {
    ($(#[$doc:meta])* $type:ident, $what:literal, $min:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $type(String);

        impl $type {
            pub fn parse(raw: impl AsRef<str>) -> Result<Self, ValueError> {
                check_text(raw.as_ref(), $what, $min, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        validated_serde!($type, String, $type::parse);
    };
}

text_value!(
    /// A portfolio's name.
    PortfolioName,
    "portfolio name",
    1,
    100
);
text_value!(
    /// A free-text description (portfolio, profile).
    Description,
    "description",
    0,
    2000
);
text_value!(
    /// A note on a trade or transfer.
    Note,
    "note",
    0,
    500
);
text_value!(
    /// The id a trade has at the exchange it came from; imports use it to skip repeats.
    ExternalId,
    "external id",
    1,
    128
);

/// At most 40 characters of untrusted input, for error messages.
fn truncate(raw: &str) -> String {
    raw.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    #[test]
    fn symbols_are_upper_cased_and_checked() {
        assert_eq!(CoinSymbol::parse(" btc ").unwrap().as_str(), "BTC");
        assert!(CoinSymbol::parse("").is_err());
        assert!(CoinSymbol::parse("BTC-USD").is_err());
        assert!(CoinSymbol::parse("ABCDEFGHIJKLMNOP").is_err());
        assert_eq!(CoinId::parse("usd-coin").unwrap().as_str(), "usd-coin");
        assert!(CoinId::parse("usd coin").is_err());
        assert!(QuoteCurrency::parse("u").is_err());
    }

    #[test]
    fn decimals_are_non_negative_bounded_and_normalized() {
        assert_eq!(
            Quantity::new(dec!(1.500)).unwrap().value().to_string(),
            "1.5"
        );
        assert_eq!(
            Price::new(dec!(-1)),
            Err(ValueError::Negative { what: "price" })
        );
        assert!(matches!(
            Quantity::new(dec!(0.0000000000000000001)),
            Err(ValueError::TooPrecise { .. })
        ));
        assert!(matches!(
            Amount::new(dec!(1000000000001)),
            Err(ValueError::TooLarge { .. })
        ));
        assert!(Quantity::new(Decimal::ZERO).unwrap().is_zero());
    }

    #[test]
    fn decimals_travel_as_strings_and_are_checked_on_the_way_in() {
        let q = Quantity::new(dec!(0.123456789012345678)).unwrap();
        let json = serde_json::to_string(&q).unwrap();
        assert_eq!(json, "\"0.123456789012345678\"");
        assert_eq!(serde_json::from_str::<Quantity>(&json).unwrap(), q);
        assert!(serde_json::from_str::<Quantity>("\"-3\"").is_err());
        assert!(serde_json::from_str::<Quantity>("\"NaN\"").is_err());
        assert!(serde_json::from_str::<CoinSymbol>("\"not a coin\"").is_err());
    }

    #[test]
    fn emails_are_checked_and_never_printed() {
        let email = Email::parse("Ada@Example.org").unwrap();
        assert_eq!(email.as_str(), "ada@example.org");
        assert!(!format!("{email:?}").contains("ada"));
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a b@example.org",
            "ada@@example.org",
            "ada@example..org",
        ] {
            assert_eq!(Email::parse(bad), Err(ValueError::Email), "{bad}");
        }
    }

    #[test]
    fn names_and_notes_are_trimmed_and_bounded() {
        assert_eq!(
            PortfolioName::parse("  Long term ").unwrap().as_str(),
            "Long term"
        );
        assert!(PortfolioName::parse("   ").is_err());
        assert!(PortfolioName::parse("a\u{0}b").is_err());
        assert!(PortfolioName::parse("x".repeat(101)).is_err());
        assert_eq!(Note::parse("").unwrap().as_str(), "");
        assert_eq!(Username::parse("Ada_L").unwrap().as_str(), "ada_l");
        assert!(Username::parse("ad").is_err());
    }

    proptest! {
        #[test]
        fn any_valid_quantity_round_trips_through_json(whole in 0u64..1_000_000_000_000, fraction in 0u64..1_000_000_000_000_000_000, scale in 0u32..=18) {
            let fraction = Decimal::from_i128_with_scale((fraction % 10u64.pow(scale)) as i128, scale);
            let value = Decimal::from(whole) + fraction;
            let q = Quantity::new(value).unwrap();
            let back: Quantity = serde_json::from_str(&serde_json::to_string(&q).unwrap()).unwrap();
            prop_assert_eq!(back, q);
            prop_assert_eq!(back.value(), value.normalize());
        }

        #[test]
        fn symbol_parsing_never_panics_and_is_idempotent(raw in "\\PC{0,20}") {
            if let Ok(symbol) = CoinSymbol::parse(&raw) {
                prop_assert_eq!(CoinSymbol::parse(symbol.as_str()).unwrap(), symbol);
            }
        }
    }
}
