//! Typed `data` for Numero's documented event types.
//!
//! Numero sends both casings (`transaction_id` and `TrxAmount` appear in its
//! own examples), so every field takes its snake_case name and its PascalCase
//! alias. Every field is optional and unknown fields are ignored: a field
//! Numero adds later must not turn a real payment into a rejected delivery.
//! The raw body stays available to the handler for anything not listed.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// A monetary amount, kept as the decimal text Numero sent (`"5000.00"` or
/// `5000.0`), so no precision is lost on the way to your decimal type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(String);

impl Amount {
    /// The decimal text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        // Through the raw JSON text, so `5000.00` stays `5000.00` rather than
        // round-tripping through f64.
        let raw = <&RawValue>::deserialize(deserializer)?.get();
        match raw.as_bytes().first() {
            Some(b'"') => serde_json::from_str(raw)
                .map(Self)
                .map_err(D::Error::custom),
            Some(b'-' | b'0'..=b'9') => Ok(Self(raw.to_owned())),
            _ => Err(D::Error::custom("an amount must be a number or a string")),
        }
    }
}

/// An optional string, or a number or boolean kept as its JSON text.
fn lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string, a number, a boolean or null")
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(Text)
}

macro_rules! transaction {
    (
        amounts { $( $(#[$adoc:meta])* $amount:ident = $apascal:literal; )* }
        texts { $( $(#[$tdoc:meta])* $text:ident = $tpascal:literal; )* }
    ) => {
        /// The `data` of a funding, transfer or payout notification.
        ///
        /// Fields come from Numero's generic (snake_case) and transfer
        /// (PascalCase) examples; each is `None` when absent or `null`.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[non_exhaustive]
        pub struct Transaction {
            $(
                $(#[$adoc])*
                #[serde(default, alias = $apascal)]
                pub $amount: Option<Amount>,
            )*
            $(
                $(#[$tdoc])*
                #[serde(default, alias = $tpascal, deserialize_with = "lenient")]
                pub $text: Option<String>,
            )*
        }
    };
}

transaction! {
    amounts {
        /// `amount`.
        amount = "Amount";
        /// `TrxAmount`: the transaction amount.
        trx_amount = "TrxAmount";
        /// `TrxFee`: the fee charged.
        trx_fee = "TrxFee";
        /// `SettledAmount`: what was settled after fees.
        settled_amount = "SettledAmount";
    }
    texts {
        /// `transaction_id`.
        transaction_id = "TransactionId";
        /// `currency` (`NGN`, …).
        currency = "Currency";
        /// `status` (`completed`, `Successful`, …).
        status = "Status";
        /// `customer_id`.
        customer_id = "CustomerId";
        /// `description`.
        description = "Description";
        /// `Merchant`.
        merchant = "Merchant";
        /// `BusinessCode`.
        business_code = "BusinessCode";
        /// `Reference`.
        reference = "Reference";
        /// `SessionId`.
        session_id = "SessionId";
        /// `VendorReference`.
        vendor_reference = "VendorReference";
        /// `Type` (`FundTransfer`, …).
        r#type = "Type";
        /// `Channel`.
        channel = "Channel";
        /// `PostingType` (`Dr` / `Cr`).
        posting_type = "PostingType";
        /// `Service`.
        service = "Service";
        /// `RequestState`.
        request_state = "RequestState";
        /// `RequestStateDetails`.
        request_state_details = "RequestStateDetails";
        /// `BeneficiaryName`.
        beneficiary_name = "BeneficiaryName";
        /// `BeneficiaryNumber`.
        beneficiary_number = "BeneficiaryNumber";
        /// `BeneficiaryBank`.
        beneficiary_bank = "BeneficiaryBank";
        /// `DateCreated`.
        date_created = "DateCreated";
        /// `DateModified`.
        date_modified = "DateModified";
    }
}
