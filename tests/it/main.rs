//! The single integration-test binary: one link step for every area, modules named
//! after the part of the system they check.

mod support;

mod auth;
mod auth_files;
mod bridge;
mod browser;
mod cli_rbench;
mod cli_rbroker;
mod clients;
mod clients_side_by_side;
mod codec_differential;
mod codec_golden;
mod codec_properties;
mod conf_options;
mod connect;
mod console;
mod deep_topics;
mod generated;
mod interop;
mod learn;
mod malformed;
mod parking;
mod persistence;
mod pubsub;
mod retain;
mod session;
mod storm;
mod sys;
mod takeover;
mod transports;
mod v5_clients;
mod v5_connection;
mod v5_errors;
mod v5_messages;
mod websockets;
mod will;
mod wrong_packets;
