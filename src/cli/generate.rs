//! Shell completions and man pages, rendered from the clap definitions so they
//! cannot drift from the parsers. They are checked in under `completions/` and
//! `man/`; a test fails when they are stale, and `MQTTKIT_BLESS=1 cargo test`
//! rewrites them.

use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

/// Extra man page text for each command: roff, appended after the generated page.
fn man_extra(name: &str) -> &'static str {
    match name {
        "rbroker" => {
            r#".SH "EXIT STATUS"
0 after SIGINT or SIGTERM; 1 when no listening socket could be opened; 3 for a usage or configuration error (as mosquitto), including \fB\-h\fR, a security option rbroker does not implement, and a bad line in a password or ACL file; 13 when a password or ACL file cannot be opened (as mosquitto).
.SH SIGNALS
SIGHUP reads the password and ACL files and the security options again, and reopens the log file; when a file is bad, the files in force stay and the error is logged. Other options that changed are logged as needing a restart. SIGUSR2 prints the subscription tree to standard output. SIGINT and SIGTERM stop the broker.
.SH "PASSWORD FILES"
\fBrbroker passwd\fR [\-H sha512 | \-H sha512\-pbkdf2] [\-I iterations] [\-c | \-D] passwordfile username, or \-b passwordfile username password, or \-U passwordfile: mosquitto_passwd's options; writes PBKDF2\-SHA512 ($7$) hashes with 210000 iterations by default. The files work in mosquitto unchanged.
.SH FILES
A mosquitto.conf(5) file: every mosquitto 2.0 option is honoured, refused at startup with the file, line and reason (TLS, plugins, PSK, mount points), or accepted with a warning while rbroker lacks the feature (persistence, bridges, WebSockets). README.md lists each option with any difference. rbroker adds connect_timeout, shared_subscription_available, subscription_identifier_available and max_topic_levels.
.SH EXAMPLES
.nf
rbroker \-v
rbroker \-p 1884 \-p 1885
rbroker \-c /etc/mosquitto/mosquitto.conf
rbroker passwd \-c /etc/mosquitto/passwd alice
.fi
"#
        }
        "rbench" => {
            r#".SH "EXIT STATUS"
0 when the run finished or was stopped with Ctrl\-C; 1 when it failed (for example, no broker to connect to); 2 for a usage error.
.SH ENVIRONMENT
MQTT_PASSWORD is the password when \fB\-P\fR is not given. NO_COLOR turns colour off under \fB\-\-color auto\fR.
.SH EXAMPLES
.nf
rbench
rbench \-n 100000 \-\-json
rbench \-h 127.0.0.1 \-p 1883
rbench conn \-c 5000 \-\-rate 1000
rbench pubsub \-\-shape fan\-in \-c 4 \-q 1 \-\-duration 30s
rbench pub \-h node1 \-h node2 \-c 100 \-\-rate 10000 \-t 'load/%i'
.fi
"#
        }
        "rsub" => {
            r#".SH "EXIT STATUS"
As mosquitto_sub: 0 when done (\fB\-C\fR reached, \fB\-E\fR, Ctrl\-C or SIGTERM after connecting); 1 for a usage error or a failed connection; the CONNACK return code (3.1/3.1.1) or reason code (5.0) when the broker refuses; 8 for a TLS error; 27 when \fB\-W\fR passes.
.SH FILES
\fI$XDG_CONFIG_HOME/rsub\fR, else \fI~/.config/rsub\fR; when there is none, mosquitto_sub's file in the same place. One option a line, read before the command line.
.SH ENVIRONMENT
MQTT_PASSWORD is the password when neither \fB\-P\fR nor \fB\-\-pw\-file\fR is given. NO_COLOR turns colour off under \fB\-\-color auto\fR.
.SH EXAMPLES
.nf
rsub \-t 'sensors/#' \-v
rsub \-t 'a/#' \-C 10 \-F '%I %t %p'
rsub \-V 5 \-t 'a/#' \-F %j \-\-pretty
rsub \-\-json \-t 'a/#' | rpub \-\-json \-h other
.fi
"#
        }
        "rpub" => {
            r#".SH "EXIT STATUS"
As mosquitto_pub: 0 when every message was sent (and acknowledged at QoS 1 and 2); 1 for a usage error or a failed connection; the CONNACK return code (3.1/3.1.1) or reason code (5.0) when the broker refuses; 7 when the connection is lost; 8 for a TLS error.
.SH FILES
\fI$XDG_CONFIG_HOME/rpub\fR, else \fI~/.config/rpub\fR; when there is none, mosquitto_pub's file in the same place. One option a line, read before the command line.
.SH ENVIRONMENT
MQTT_PASSWORD is the password when neither \fB\-P\fR nor \fB\-\-pw\-file\fR is given. NO_COLOR turns colour off under \fB\-\-color auto\fR.
.SH EXAMPLES
.nf
rpub \-t sensors/temp \-m 21.5
rpub \-t status \-r \-q 1 \-m online
seq 1000 | rpub \-t numbers \-l \-q 1
rsub \-\-json \-t 'a/#' | rpub \-\-json \-h other
.fi
"#
        }
        _ => "",
    }
}

/// Every generated file, relative to the repository root, with its contents.
pub fn files() -> Vec<(PathBuf, Vec<u8>)> {
    let commands = [
        ("rbroker", super::rbroker::Args::command()),
        ("rbench", super::rbench::Args::command()),
        ("rsub", super::rsub::Args::command()),
        ("rpub", super::rpub::Args::command()),
    ];
    let mut out = Vec::new();
    for (name, command) in commands {
        for (shell, file) in [
            (Shell::Bash, format!("{name}.bash")),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let mut buffer = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), name, &mut buffer);
            out.push((PathBuf::from("completions").join(file), buffer));
        }
        let mut page = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = clap_mangen::Man::new(command.clone()).render(&mut page);
        page.extend_from_slice(man_extra(name).as_bytes());
        out.push((PathBuf::from("man").join(format!("{name}.1")), page));
    }
    out
}
