//! Typed `data` for Numero's documented event types.
//!
//! Numero sends both casings (`transaction_id` and `TrxAmount` appear in its
//! own examples), so every field takes its snake_case name and its PascalCase
//! alias. Every field is optional and unknown fields are ignored: a field
//! Numero adds later must not turn a real payment into a rejected delivery.
//! The raw body stays available to the handler for anything not listed.

use std::fmt;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::scheme::json;
use crate::{LayerAnswer, Text};

/// A monetary amount, kept as the decimal text Numero sent (`"5000.00"` or
/// `5000.0`), so no precision is lost on the way to your decimal type. A
/// view into the body, like every text field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Amount(Text);

impl Amount {
    /// The decimal text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The decimal text as a [`Text`].
    pub fn as_text(&self) -> &Text {
        &self.0
    }

    /// An amount from its raw JSON (a slice of `body`): a string, unescaped,
    /// or a number kept as written.
    fn from_raw(body: &Text, raw: &RawValue) -> Result<Self, LayerAnswer> {
        let json = raw.get();
        match json.as_bytes().first() {
            Some(b'"') => json::string(body, json).map(Self),
            Some(b'-' | b'0'..=b'9') => Ok(Self(body.slice_ref(json))),
            _ => return Err(LayerAnswer::InvalidPayload),
        }
        .map_err(|_| LayerAnswer::InvalidPayload)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Transaction {
    /// Types the raw JSON `data` (a slice of `body`, an object).
    ///
    /// # Errors
    ///
    /// [`LayerAnswer::InvalidPayload`] when `data` is not an object, a field
    /// is given twice, or a field has the wrong JSON type.
    pub(crate) fn parse(body: &Text, data: &RawValue) -> Result<Box<Self>, LayerAnswer> {
        // An object only: serde would also take an array, field by position.
        if !data.get().starts_with('{') {
            return Err(LayerAnswer::InvalidPayload);
        }
        let raw: RawTransaction<'_> =
            serde_json::from_str(data.get()).map_err(|_| LayerAnswer::InvalidPayload)?;
        Self::from_raw(body, raw)
    }

    /// Types `data` straight from the body's deserializer (one pass over
    /// its bytes); `null` is the empty transaction, as in [`Self::parse`].
    ///
    /// # Errors
    ///
    /// A data error for what [`Self::parse`] refuses; the deserializer's
    /// own errors.
    pub(crate) fn deserialize_in<'de, D: Deserializer<'de>>(
        body: &Text,
        deserializer: D,
    ) -> Result<Box<Self>, D::Error> {
        deserializer.deserialize_option(InBody(body))
    }
}

/// Visits `data` in the body: `null`, or an object (never an array).
struct InBody<'t>(&'t Text);

impl<'de> Visitor<'de> for InBody<'_> {
    type Value = Box<Transaction>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a transaction object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Box<Transaction>, E> {
        Ok(Box::default())
    }

    fn visit_some<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Box<Transaction>, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Box<Transaction>, A::Error> {
        let raw = RawTransaction::deserialize(MapAccessDeserializer::new(map))?;
        Transaction::from_raw(self.0, raw)
            .map_err(|_| de::Error::custom("a field of the wrong type"))
    }
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
        /// Every field is a view into the verified body. A text field also
        /// takes a number or a boolean, kept as its JSON text.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
        #[non_exhaustive]
        pub struct Transaction {
            $(
                $(#[$adoc])*
                pub $amount: Option<Amount>,
            )*
            $(
                $(#[$tdoc])*
                pub $text: Option<Text>,
            )*
        }

        /// One pass over `data`: each field's raw JSON, borrowed from the
        /// body; a field given twice (under either casing) is an error.
        #[derive(Deserialize)]
        struct RawTransaction<'a> {
            $(
                #[serde(default, alias = $apascal, borrow)]
                $amount: Option<&'a RawValue>,
            )*
            $(
                #[serde(default, alias = $tpascal, borrow)]
                $text: Option<&'a RawValue>,
            )*
        }

        impl Transaction {
            /// The typed fields of `raw`, whose values are slices of `body`.
            fn from_raw(body: &Text, raw: RawTransaction<'_>) -> Result<Box<Self>, LayerAnswer> {
                Ok(Box::new(Self {
                    $(
                        $amount: raw
                            .$amount
                            .map(|raw| Amount::from_raw(body, raw))
                            .transpose()?,
                    )*
                    $(
                        $text: json::text(body, raw.$text)?,
                    )*
                }))
            }
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
