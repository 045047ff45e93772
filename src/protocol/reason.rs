//! Reason codes: the MQTT 5 set with their names, which packet may carry which, and
//! the mapping to and from MQTT 3.x CONNACK return codes.
//!
//! The broker speaks reason codes throughout; the codec turns them into a 3.x return
//! code when the connection is 3.1 or 3.1.1.

macro_rules! reason_codes {
    ($($name:ident = $value:literal, $text:literal;)*) => {
        /// An MQTT 5 reason code (§2.4). `Success` doubles as "Normal disconnection"
        /// and "Granted QoS 0", as in the spec.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum ReasonCode {
            $($name = $value,)*
        }

        impl ReasonCode {
            /// The code for a byte, if the byte is a defined reason code.
            pub fn from_u8(value: u8) -> Option<ReasonCode> {
                match value {
                    $($value => Some(ReasonCode::$name),)*
                    _ => None,
                }
            }

            /// The spec's name for the code, as mosquitto prints it.
            pub fn name(self) -> &'static str {
                match self {
                    $(ReasonCode::$name => $text,)*
                }
            }
        }
    };
}

reason_codes! {
    Success = 0x00, "Success";
    GrantedQoS1 = 0x01, "Granted QoS 1";
    GrantedQoS2 = 0x02, "Granted QoS 2";
    DisconnectWithWillMessage = 0x04, "Disconnect with Will Message";
    NoMatchingSubscribers = 0x10, "No matching subscribers";
    NoSubscriptionExisted = 0x11, "No subscription existed";
    ContinueAuthentication = 0x18, "Continue authentication";
    ReAuthenticate = 0x19, "Re-authenticate";
    UnspecifiedError = 0x80, "Unspecified error";
    MalformedPacket = 0x81, "Malformed Packet";
    ProtocolError = 0x82, "Protocol Error";
    ImplementationSpecificError = 0x83, "Implementation specific error";
    UnsupportedProtocolVersion = 0x84, "Unsupported Protocol Version";
    ClientIdentifierNotValid = 0x85, "Client Identifier not valid";
    BadUserNameOrPassword = 0x86, "Bad User Name or Password";
    NotAuthorized = 0x87, "Not authorized";
    ServerUnavailable = 0x88, "Server unavailable";
    ServerBusy = 0x89, "Server busy";
    Banned = 0x8a, "Banned";
    ServerShuttingDown = 0x8b, "Server shutting down";
    BadAuthenticationMethod = 0x8c, "Bad authentication method";
    KeepAliveTimeout = 0x8d, "Keep Alive timeout";
    SessionTakenOver = 0x8e, "Session taken over";
    TopicFilterInvalid = 0x8f, "Topic Filter invalid";
    TopicNameInvalid = 0x90, "Topic Name invalid";
    PacketIdentifierInUse = 0x91, "Packet Identifier in use";
    PacketIdentifierNotFound = 0x92, "Packet Identifier not found";
    ReceiveMaximumExceeded = 0x93, "Receive Maximum exceeded";
    TopicAliasInvalid = 0x94, "Topic Alias invalid";
    PacketTooLarge = 0x95, "Packet too large";
    MessageRateTooHigh = 0x96, "Message rate too high";
    QuotaExceeded = 0x97, "Quota exceeded";
    AdministrativeAction = 0x98, "Administrative action";
    PayloadFormatInvalid = 0x99, "Payload format invalid";
    RetainNotSupported = 0x9a, "Retain not supported";
    QoSNotSupported = 0x9b, "QoS not supported";
    UseAnotherServer = 0x9c, "Use another server";
    ServerMoved = 0x9d, "Server moved";
    SharedSubscriptionsNotSupported = 0x9e, "Shared Subscriptions not supported";
    ConnectionRateExceeded = 0x9f, "Connection rate exceeded";
    MaximumConnectTime = 0xa0, "Maximum connect time";
    SubscriptionIdentifiersNotSupported = 0xa1, "Subscription identifiers not supported";
    WildcardSubscriptionsNotSupported = 0xa2, "Wildcard Subscriptions not supported";
}

impl ReasonCode {
    /// Whether a client may end a connection with this reason: v5 §3.14.2.1 marks
    /// the others as sent by the server only.
    pub fn is_client_disconnect(self) -> bool {
        use ReasonCode::*;
        matches!(
            self,
            Success
                | DisconnectWithWillMessage
                | UnspecifiedError
                | MalformedPacket
                | ProtocolError
                | ImplementationSpecificError
                | TopicNameInvalid
                | ReceiveMaximumExceeded
                | TopicAliasInvalid
                | PacketTooLarge
                | MessageRateTooHigh
                | QuotaExceeded
                | AdministrativeAction
                | PayloadFormatInvalid
        )
    }

    /// Codes of 0x80 and above report failure (§2.4).
    pub fn is_error(self) -> bool {
        self as u8 >= 0x80
    }

    /// The MQTT 3.x CONNACK return code for this reason (3.1.1 §3.2.2.3).
    ///
    /// The six 3.x codes map one to one; other refusals fall back to the closest
    /// 3.x meaning, as mosquitto does when a v5-only condition refuses a 3.x client.
    pub fn to_v3_connack(self) -> u8 {
        match self {
            ReasonCode::Success => 0,
            ReasonCode::UnsupportedProtocolVersion => 1,
            ReasonCode::ClientIdentifierNotValid => 2,
            ReasonCode::ServerUnavailable
            | ReasonCode::ServerBusy
            | ReasonCode::ServerShuttingDown
            | ReasonCode::UseAnotherServer
            | ReasonCode::ServerMoved
            | ReasonCode::ConnectionRateExceeded => 3,
            ReasonCode::BadUserNameOrPassword => 4,
            _ => 5,
        }
    }

    /// The reason code for a 3.x CONNACK return code, if the code is defined.
    pub fn from_v3_connack(code: u8) -> Option<ReasonCode> {
        Some(match code {
            0 => ReasonCode::Success,
            1 => ReasonCode::UnsupportedProtocolVersion,
            2 => ReasonCode::ClientIdentifierNotValid,
            3 => ReasonCode::ServerUnavailable,
            4 => ReasonCode::BadUserNameOrPassword,
            5 => ReasonCode::NotAuthorized,
            _ => return None,
        })
    }

    /// The sentence mosquitto's clients print for a refused 3.x CONNACK.
    pub fn v3_connack_text(code: u8) -> &'static str {
        match code {
            0 => "Connection Accepted.",
            1 => "Connection Refused: unacceptable protocol version.",
            2 => "Connection Refused: identifier rejected.",
            3 => "Connection Refused: broker unavailable.",
            4 => "Connection Refused: bad user name or password.",
            5 => "Connection Refused: not authorised.",
            _ => "Connection Refused: unknown reason.",
        }
    }
}

/// Which packet a reason code appears in; each allows its own subset (§2.4 table 2-6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonContext {
    ConnAck,
    PubAck,
    PubRel,
    SubAck,
    UnsubAck,
    Disconnect,
    Auth,
}

impl ReasonContext {
    /// Whether `code` may appear in this packet.
    pub fn allows(self, code: ReasonCode) -> bool {
        use ReasonCode::*;
        match self {
            ReasonContext::ConnAck => matches!(
                code,
                Success
                    | UnspecifiedError
                    | MalformedPacket
                    | ProtocolError
                    | ImplementationSpecificError
                    | UnsupportedProtocolVersion
                    | ClientIdentifierNotValid
                    | BadUserNameOrPassword
                    | NotAuthorized
                    | ServerUnavailable
                    | ServerBusy
                    | Banned
                    | BadAuthenticationMethod
                    | TopicNameInvalid
                    | PacketTooLarge
                    | QuotaExceeded
                    | PayloadFormatInvalid
                    | RetainNotSupported
                    | QoSNotSupported
                    | UseAnotherServer
                    | ServerMoved
                    | ConnectionRateExceeded
            ),
            ReasonContext::PubAck => matches!(
                code,
                Success
                    | NoMatchingSubscribers
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicNameInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | PayloadFormatInvalid
            ),
            ReasonContext::PubRel => matches!(code, Success | PacketIdentifierNotFound),
            ReasonContext::SubAck => matches!(
                code,
                Success
                    | GrantedQoS1
                    | GrantedQoS2
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
                    | QuotaExceeded
                    | SharedSubscriptionsNotSupported
                    | SubscriptionIdentifiersNotSupported
                    | WildcardSubscriptionsNotSupported
            ),
            ReasonContext::UnsubAck => matches!(
                code,
                Success
                    | NoSubscriptionExisted
                    | UnspecifiedError
                    | ImplementationSpecificError
                    | NotAuthorized
                    | TopicFilterInvalid
                    | PacketIdentifierInUse
            ),
            ReasonContext::Disconnect => !matches!(
                code,
                GrantedQoS1
                    | GrantedQoS2
                    | NoMatchingSubscribers
                    | NoSubscriptionExisted
                    | ContinueAuthentication
                    | ReAuthenticate
                    | UnsupportedProtocolVersion
                    | ClientIdentifierNotValid
                    | BadUserNameOrPassword
                    | ServerUnavailable
                    | Banned
                    | BadAuthenticationMethod
                    | PacketIdentifierInUse
                    | PacketIdentifierNotFound
            ),
            ReasonContext::Auth => {
                matches!(code, Success | ContinueAuthentication | ReAuthenticate)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_maps_back_to_itself() {
        for byte in 0..=255u8 {
            if let Some(code) = ReasonCode::from_u8(byte) {
                assert_eq!(code as u8, byte);
                assert!(!code.name().is_empty());
            }
        }
        assert_eq!(ReasonCode::from_u8(0x03), None);
    }

    #[test]
    fn v3_connack_codes_round_trip() {
        for code in 0..=5u8 {
            let reason = ReasonCode::from_v3_connack(code).expect("defined code");
            assert_eq!(reason.to_v3_connack(), code);
        }
        assert_eq!(ReasonCode::from_v3_connack(6), None);
        assert_eq!(ReasonCode::Banned.to_v3_connack(), 5);
    }

    #[test]
    fn contexts_follow_table_2_6() {
        assert!(ReasonContext::PubAck.allows(ReasonCode::NoMatchingSubscribers));
        assert!(!ReasonContext::PubAck.allows(ReasonCode::GrantedQoS1));
        assert!(ReasonContext::Disconnect.allows(ReasonCode::DisconnectWithWillMessage));
        assert!(ReasonContext::Disconnect.allows(ReasonCode::SessionTakenOver));
        assert!(!ReasonContext::Disconnect.allows(ReasonCode::ContinueAuthentication));
        assert!(ReasonContext::Auth.allows(ReasonCode::ReAuthenticate));
        assert!(!ReasonContext::ConnAck.allows(ReasonCode::KeepAliveTimeout));
    }
}
