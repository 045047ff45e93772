//! The broker a scenario runs against: rbroker in-process or a real mosquitto,
//! both started from the same mosquitto.conf lines, so one scenario shows what
//! each broker does and that the expectation matches mosquitto where it should.

use std::net::SocketAddr;

use mqttkit::broker::Config;

use super::TestBroker;
use super::mosquitto::{Mosquitto, available};

pub enum Target {
    Rbroker(TestBroker),
    Mosquitto(Mosquitto),
}

impl Target {
    /// rbroker configured by `conf` (mosquitto.conf syntax), `$SYS` off unless set,
    /// anonymous access allowed as in [`Mosquitto::start`]. Its one address is the
    /// default listener, so listener options in `conf` apply to it.
    pub fn rbroker(conf: &str) -> Target {
        let mut config = Config {
            sys_interval: 0,
            ..Config::default()
        };
        config
            .apply_text(
                &format!("allow_anonymous true\n{conf}"),
                "test configuration",
            )
            .expect("valid test configuration");
        Target::Rbroker(TestBroker::with_config(config))
    }

    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Rbroker(broker) => broker.addr(),
            Target::Mosquitto(mosquitto) => SocketAddr::from(([127, 0, 0, 1], mosquitto.port)),
        }
    }

    pub fn is_mosquitto(&self) -> bool {
        matches!(self, Target::Mosquitto(_))
    }

    /// The port, as the client tools take it.
    pub fn port(&self) -> String {
        self.addr().port().to_string()
    }

    pub fn name(&self) -> &'static str {
        match self {
            Target::Rbroker(_) => "rbroker",
            Target::Mosquitto(_) => "mosquitto",
        }
    }
}

/// Runs `scenario` against rbroker, then against mosquitto when it is installed
/// (required under `MQTTKIT_REQUIRE_MOSQUITTO=1`). `conf` configures both.
pub fn on_both(test: &str, conf: &str, scenario: impl Fn(&Target)) {
    scenario(&Target::rbroker(conf));
    if available(test) {
        scenario(&Target::Mosquitto(Mosquitto::start(conf)));
    }
}

/// Runs `scenario` against rbroker and then mosquitto, for scenarios driven by
/// mosquitto's client tools: skipped (with the reason printed) when they are not
/// installed, mandatory under `MQTTKIT_REQUIRE_MOSQUITTO=1`.
pub fn with_mosquitto_tools(test: &str, conf: &str, scenario: impl Fn(&Target)) {
    if !available(test) {
        return;
    }
    scenario(&Target::rbroker(conf));
    scenario(&Target::Mosquitto(Mosquitto::start(conf)));
}
