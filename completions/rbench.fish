# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_rbench_global_optspecs
    string join \n h/host= p/port= V/protocol-version= u/username= P/pw= k/keepalive= cafile= capath= cert= key= insecure tls-use-os-certs tls-alpn= tls-version= json csv color= quiet interval= broker-pid= no-pin n/messages= s/size= latency-messages= help version
end

function __fish_rbench_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_rbench_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_rbench_using_subcommand
    set -l cmd (__fish_rbench_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c rbench -n "__fish_rbench_needs_command" -s h -l host -d 'Broker host, as HOST or HOST:PORT, or ws://HOST[:PORT][/PATH] and wss://... for MQTT over WebSockets (path /mqtt, port 8080 or 8081 by default); repeat it to spread clients round-robin over the nodes of a cluster. Without it, rbench starts its own broker.' -r
complete -c rbench -n "__fish_rbench_needs_command" -s p -l port -d 'Port for hosts given without one [default: 1883, or 8883 with TLS]' -r
complete -c rbench -n "__fish_rbench_needs_command" -s V -l protocol-version -d 'MQTT version: mqttv31 (31), mqttv311 (311) or mqttv5 (5)' -r -f -a "mqttv31\t''
mqttv311\t''
mqttv5\t''"
complete -c rbench -n "__fish_rbench_needs_command" -s u -l username -r
complete -c rbench -n "__fish_rbench_needs_command" -s P -l pw -d 'Password; the MQTT_PASSWORD environment variable keeps it out of `ps`' -r
complete -c rbench -n "__fish_rbench_needs_command" -s k -l keepalive -d 'Keep-alive in seconds' -r
complete -c rbench -n "__fish_rbench_needs_command" -l cafile -d 'PEM file of CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_needs_command" -l capath -d 'Directory of PEM CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_needs_command" -l cert -d 'Client certificate (PEM), with --key' -r -F
complete -c rbench -n "__fish_rbench_needs_command" -l key -d 'Client private key (PEM), with --cert' -r -F
complete -c rbench -n "__fish_rbench_needs_command" -l tls-alpn -d 'ALPN protocol to offer' -r
complete -c rbench -n "__fish_rbench_needs_command" -l tls-version -d 'Lowest TLS version: tlsv1.2 (default) or tlsv1.3' -r
complete -c rbench -n "__fish_rbench_needs_command" -l color -d 'Colour the table: auto (a terminal, NO_COLOR unset), always or never' -r -f -a "auto\t'When stdout is a terminal and NO_COLOR is not set'
always\t''
never\t''"
complete -c rbench -n "__fish_rbench_needs_command" -l interval -d 'Time between progress lines when stderr is not a terminal' -r
complete -c rbench -n "__fish_rbench_needs_command" -l broker-pid -d 'PID of the measured broker on this machine, to report its CPU time and memory' -r
complete -c rbench -n "__fish_rbench_needs_command" -s n -l messages -d 'Messages per QoS level (QoS comparison)' -r
complete -c rbench -n "__fish_rbench_needs_command" -s s -l size -d 'Payload size in bytes (QoS comparison)' -r
complete -c rbench -n "__fish_rbench_needs_command" -l latency-messages -d 'Messages per level sent one at a time to measure latency [default: n/10, 100..=2000]' -r
complete -c rbench -n "__fish_rbench_needs_command" -l insecure -d 'Do not check that the certificate names the host (the chain is still checked)'
complete -c rbench -n "__fish_rbench_needs_command" -l tls-use-os-certs -d 'Trust the operating system\'s CA certificates; turns TLS on'
complete -c rbench -n "__fish_rbench_needs_command" -l json -d 'One JSON document on stdout'
complete -c rbench -n "__fish_rbench_needs_command" -l csv -d 'CSV on stdout'
complete -c rbench -n "__fish_rbench_needs_command" -l quiet -d 'No progress on stderr'
complete -c rbench -n "__fish_rbench_needs_command" -l no-pin -d 'Do not pin the embedded broker and rbench to separate CPUs'
complete -c rbench -n "__fish_rbench_needs_command" -l help -d 'Print help'
complete -c rbench -n "__fish_rbench_needs_command" -l version -d 'Print the version'
complete -c rbench -n "__fish_rbench_needs_command" -f -a "conn" -d 'Open many connections at a rate; report connect rate, latency, failures and the broker\'s memory per connection'
complete -c rbench -n "__fish_rbench_needs_command" -f -a "pub" -d 'Publish from many clients'
complete -c rbench -n "__fish_rbench_needs_command" -f -a "sub" -d 'Subscribe with many clients'
complete -c rbench -n "__fish_rbench_needs_command" -f -a "pubsub" -d 'Publishers and subscribers together: 1:1 pairs, fan-in or fan-out'
complete -c rbench -n "__fish_rbench_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c rbench -n "__fish_rbench_using_subcommand conn" -s c -l clients -d 'Connections to open' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l rate -d 'New connections per second [default: as fast as --concurrency allows]' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l concurrency -d 'Connection attempts under way at once' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l timeout -d 'Give up on one attempt after this long' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l hold -d 'Keep the connections open this long after the report' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -s h -l host -d 'Broker host, as HOST or HOST:PORT, or ws://HOST[:PORT][/PATH] and wss://... for MQTT over WebSockets (path /mqtt, port 8080 or 8081 by default); repeat it to spread clients round-robin over the nodes of a cluster. Without it, rbench starts its own broker.' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -s p -l port -d 'Port for hosts given without one [default: 1883, or 8883 with TLS]' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -s V -l protocol-version -d 'MQTT version: mqttv31 (31), mqttv311 (311) or mqttv5 (5)' -r -f -a "mqttv31\t''
mqttv311\t''
mqttv5\t''"
complete -c rbench -n "__fish_rbench_using_subcommand conn" -s u -l username -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -s P -l pw -d 'Password; the MQTT_PASSWORD environment variable keeps it out of `ps`' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -s k -l keepalive -d 'Keep-alive in seconds' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l cafile -d 'PEM file of CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l capath -d 'Directory of PEM CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l cert -d 'Client certificate (PEM), with --key' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l key -d 'Client private key (PEM), with --cert' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l tls-alpn -d 'ALPN protocol to offer' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l tls-version -d 'Lowest TLS version: tlsv1.2 (default) or tlsv1.3' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l color -d 'Colour the table: auto (a terminal, NO_COLOR unset), always or never' -r -f -a "auto\t'When stdout is a terminal and NO_COLOR is not set'
always\t''
never\t''"
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l interval -d 'Time between progress lines when stderr is not a terminal' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l broker-pid -d 'PID of the measured broker on this machine, to report its CPU time and memory' -r
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l insecure -d 'Do not check that the certificate names the host (the chain is still checked)'
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l tls-use-os-certs -d 'Trust the operating system\'s CA certificates; turns TLS on'
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l json -d 'One JSON document on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l csv -d 'CSV on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l quiet -d 'No progress on stderr'
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l no-pin -d 'Do not pin the embedded broker and rbench to separate CPUs'
complete -c rbench -n "__fish_rbench_using_subcommand conn" -l help -d 'Print help'
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s c -l clients -d 'Publishing clients' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s t -l topic -d 'Topic; %i is the client index, %c the client id' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l rate -d 'Messages per second over all clients [default: as fast as the broker takes them]' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l rate-per-client -d 'Messages per second per client' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l inflight -d 'Unacknowledged QoS 1/2 messages per client' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s q -l qos -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s s -l size -d 'Payload size in bytes (24 or more carry rbench\'s stamp, for latency and loss)' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s n -l count -d 'Messages per client (publisher; subscriber in `sub`)' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l duration -d 'How long to run after the warm-up [default: 10s]' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l warmup -d 'Time at the start that is not counted' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s h -l host -d 'Broker host, as HOST or HOST:PORT, or ws://HOST[:PORT][/PATH] and wss://... for MQTT over WebSockets (path /mqtt, port 8080 or 8081 by default); repeat it to spread clients round-robin over the nodes of a cluster. Without it, rbench starts its own broker.' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s p -l port -d 'Port for hosts given without one [default: 1883, or 8883 with TLS]' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s V -l protocol-version -d 'MQTT version: mqttv31 (31), mqttv311 (311) or mqttv5 (5)' -r -f -a "mqttv31\t''
mqttv311\t''
mqttv5\t''"
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s u -l username -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s P -l pw -d 'Password; the MQTT_PASSWORD environment variable keeps it out of `ps`' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -s k -l keepalive -d 'Keep-alive in seconds' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l cafile -d 'PEM file of CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l capath -d 'Directory of PEM CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l cert -d 'Client certificate (PEM), with --key' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l key -d 'Client private key (PEM), with --cert' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l tls-alpn -d 'ALPN protocol to offer' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l tls-version -d 'Lowest TLS version: tlsv1.2 (default) or tlsv1.3' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l color -d 'Colour the table: auto (a terminal, NO_COLOR unset), always or never' -r -f -a "auto\t'When stdout is a terminal and NO_COLOR is not set'
always\t''
never\t''"
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l interval -d 'Time between progress lines when stderr is not a terminal' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l broker-pid -d 'PID of the measured broker on this machine, to report its CPU time and memory' -r
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l insecure -d 'Do not check that the certificate names the host (the chain is still checked)'
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l tls-use-os-certs -d 'Trust the operating system\'s CA certificates; turns TLS on'
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l json -d 'One JSON document on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l csv -d 'CSV on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l quiet -d 'No progress on stderr'
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l no-pin -d 'Do not pin the embedded broker and rbench to separate CPUs'
complete -c rbench -n "__fish_rbench_using_subcommand pub" -l help -d 'Print help'
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s c -l clients -d 'Subscribing clients' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s t -l topic -d 'Topic filter; %i is the client index, %c the client id' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s q -l qos -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s s -l size -d 'Payload size in bytes (24 or more carry rbench\'s stamp, for latency and loss)' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s n -l count -d 'Messages per client (publisher; subscriber in `sub`)' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l duration -d 'How long to run after the warm-up [default: 10s]' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l warmup -d 'Time at the start that is not counted' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s h -l host -d 'Broker host, as HOST or HOST:PORT, or ws://HOST[:PORT][/PATH] and wss://... for MQTT over WebSockets (path /mqtt, port 8080 or 8081 by default); repeat it to spread clients round-robin over the nodes of a cluster. Without it, rbench starts its own broker.' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s p -l port -d 'Port for hosts given without one [default: 1883, or 8883 with TLS]' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s V -l protocol-version -d 'MQTT version: mqttv31 (31), mqttv311 (311) or mqttv5 (5)' -r -f -a "mqttv31\t''
mqttv311\t''
mqttv5\t''"
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s u -l username -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s P -l pw -d 'Password; the MQTT_PASSWORD environment variable keeps it out of `ps`' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -s k -l keepalive -d 'Keep-alive in seconds' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l cafile -d 'PEM file of CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l capath -d 'Directory of PEM CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l cert -d 'Client certificate (PEM), with --key' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l key -d 'Client private key (PEM), with --cert' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l tls-alpn -d 'ALPN protocol to offer' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l tls-version -d 'Lowest TLS version: tlsv1.2 (default) or tlsv1.3' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l color -d 'Colour the table: auto (a terminal, NO_COLOR unset), always or never' -r -f -a "auto\t'When stdout is a terminal and NO_COLOR is not set'
always\t''
never\t''"
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l interval -d 'Time between progress lines when stderr is not a terminal' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l broker-pid -d 'PID of the measured broker on this machine, to report its CPU time and memory' -r
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l insecure -d 'Do not check that the certificate names the host (the chain is still checked)'
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l tls-use-os-certs -d 'Trust the operating system\'s CA certificates; turns TLS on'
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l json -d 'One JSON document on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l csv -d 'CSV on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l quiet -d 'No progress on stderr'
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l no-pin -d 'Do not pin the embedded broker and rbench to separate CPUs'
complete -c rbench -n "__fish_rbench_using_subcommand sub" -l help -d 'Print help'
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l shape -r -f -a "pairs\t'Publisher i → subscriber i, each pair on its own topic'
fan-in\t'Every publisher → one subscriber'
fan-out\t'One publisher → every subscriber'"
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s c -l clients -d 'Pairs, publishers (fan-in) or subscribers (fan-out)' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l rate -d 'Fixed rate in messages per second over all publishers, instead of the closed-loop window' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l window -d 'Closed loop: most messages published and not yet delivered' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l inflight -d 'Unacknowledged QoS 1/2 messages per publisher' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s q -l qos -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s s -l size -d 'Payload size in bytes (24 or more carry rbench\'s stamp, for latency and loss)' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s n -l count -d 'Messages per client (publisher; subscriber in `sub`)' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l duration -d 'How long to run after the warm-up [default: 10s]' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l warmup -d 'Time at the start that is not counted' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s h -l host -d 'Broker host, as HOST or HOST:PORT, or ws://HOST[:PORT][/PATH] and wss://... for MQTT over WebSockets (path /mqtt, port 8080 or 8081 by default); repeat it to spread clients round-robin over the nodes of a cluster. Without it, rbench starts its own broker.' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s p -l port -d 'Port for hosts given without one [default: 1883, or 8883 with TLS]' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s V -l protocol-version -d 'MQTT version: mqttv31 (31), mqttv311 (311) or mqttv5 (5)' -r -f -a "mqttv31\t''
mqttv311\t''
mqttv5\t''"
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s u -l username -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s P -l pw -d 'Password; the MQTT_PASSWORD environment variable keeps it out of `ps`' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -s k -l keepalive -d 'Keep-alive in seconds' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l cafile -d 'PEM file of CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l capath -d 'Directory of PEM CA certificates to trust; turns TLS on' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l cert -d 'Client certificate (PEM), with --key' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l key -d 'Client private key (PEM), with --cert' -r -F
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l tls-alpn -d 'ALPN protocol to offer' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l tls-version -d 'Lowest TLS version: tlsv1.2 (default) or tlsv1.3' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l color -d 'Colour the table: auto (a terminal, NO_COLOR unset), always or never' -r -f -a "auto\t'When stdout is a terminal and NO_COLOR is not set'
always\t''
never\t''"
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l interval -d 'Time between progress lines when stderr is not a terminal' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l broker-pid -d 'PID of the measured broker on this machine, to report its CPU time and memory' -r
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l insecure -d 'Do not check that the certificate names the host (the chain is still checked)'
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l tls-use-os-certs -d 'Trust the operating system\'s CA certificates; turns TLS on'
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l json -d 'One JSON document on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l csv -d 'CSV on stdout'
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l quiet -d 'No progress on stderr'
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l no-pin -d 'Do not pin the embedded broker and rbench to separate CPUs'
complete -c rbench -n "__fish_rbench_using_subcommand pubsub" -l help -d 'Print help'
complete -c rbench -n "__fish_rbench_using_subcommand help; and not __fish_seen_subcommand_from conn pub sub pubsub help" -f -a "conn" -d 'Open many connections at a rate; report connect rate, latency, failures and the broker\'s memory per connection'
complete -c rbench -n "__fish_rbench_using_subcommand help; and not __fish_seen_subcommand_from conn pub sub pubsub help" -f -a "pub" -d 'Publish from many clients'
complete -c rbench -n "__fish_rbench_using_subcommand help; and not __fish_seen_subcommand_from conn pub sub pubsub help" -f -a "sub" -d 'Subscribe with many clients'
complete -c rbench -n "__fish_rbench_using_subcommand help; and not __fish_seen_subcommand_from conn pub sub pubsub help" -f -a "pubsub" -d 'Publishers and subscribers together: 1:1 pairs, fan-in or fan-out'
complete -c rbench -n "__fish_rbench_using_subcommand help; and not __fish_seen_subcommand_from conn pub sub pubsub help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
