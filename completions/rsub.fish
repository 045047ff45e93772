complete -c rsub -s t -l topic -d 'Topic filter to subscribe to; repeat for more' -r
complete -c rsub -l match -d 'Do not connect: say which of the -t filters a message on TOPIC reaches, and why (the broker\'s matcher, explained)' -r
complete -c rsub -s q -l qos -d 'QoS of the subscriptions: 0, 1 or 2' -r
complete -c rsub -s U -l unsubscribe -d 'Unsubscribe from this filter after connecting; repeat for more' -r
complete -c rsub -s T -l filter-out -d 'Do not print messages on topics matching this filter; repeat for more' -r
complete -c rsub -s C -d 'Exit after this many messages' -r
complete -c rsub -s W -d 'Exit after this many seconds ("Timed out", status 27)' -r
complete -c rsub -s F -d 'Output format (mosquitto_sub\'s %, @ and \\ sequences)' -r
complete -c rsub -l random-filter -d 'Print only this percentage of messages (0.1 to 100)' -r
complete -c rsub -s h -l host -d 'Broker host [default: localhost]' -r
complete -c rsub -s p -l port -d 'Port [default: 1883, or 8883 with --cafile/--capath]' -r
complete -c rsub -l unix -d 'Connect through this unix socket instead of TCP' -r
complete -c rsub -s L -l url -d 'mqtt(s)://[user[:password]@]host[:port]/topic, or ws(s)://[user[:password]@]host[:port][/path] for MQTT over WebSockets (topics from -t)' -r
complete -c rsub -s A -d 'Local address to connect from' -r
complete -c rsub -s V -l protocol-version -d 'MQTT version: mqttv31 (31), mqttv311 (311, default) or mqttv5 (5)' -r
complete -c rsub -s i -l id -d 'Client id [default: none sent; the broker assigns one]' -r
complete -c rsub -s I -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c rsub -s k -l keepalive -d 'Keep-alive in seconds, 5 to 65535 [default: 60]' -r
complete -c rsub -s x -d 'MQTT 5 session expiry in seconds; -1 or ∞ for never' -r
complete -c rsub -s M -d 'Most QoS 1/2 messages in flight at once [default: 20]' -r
complete -c rsub -s u -l username -r
complete -c rsub -s P -l pw -d 'Password (visible in ps; prefer --pw-file or MQTT_PASSWORD)' -r
complete -c rsub -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c rsub -s D -l property -d 'MQTT 5 property: -D COMMAND PROPERTY VALUE (user-property takes KEY VALUE)' -r
complete -c rsub -l will-topic -r
complete -c rsub -l will-payload -r
complete -c rsub -l will-qos -r
complete -c rsub -l cafile -d 'PEM file of CA certificates to trust; turns TLS on' -r -F
complete -c rsub -l capath -d 'Directory of PEM CA certificates to trust; turns TLS on' -r -F
complete -c rsub -l cert -d 'Client certificate (PEM), with --key' -r -F
complete -c rsub -l key -d 'Client private key (PEM), with --cert' -r -F
complete -c rsub -l tls-alpn -d 'ALPN protocol to offer' -r
complete -c rsub -l tls-version -d 'Lowest TLS version: tlsv1.2 (default) or tlsv1.3' -r
complete -c rsub -l ciphers -d 'OpenSSL cipher list (rustls chooses its own safe suites)' -r
complete -c rsub -l tls-engine -r
complete -c rsub -l keyform -r
complete -c rsub -l tls-engine-kpass-sha1 -r
complete -c rsub -l psk -r
complete -c rsub -l psk-identity -r
complete -c rsub -l proxy -r
complete -c rsub -l color -d 'Colour human output: auto (a terminal, and NO_COLOR unset), always, never' -r -f -a "auto\t'When stdout is a terminal and NO_COLOR is not set'
always\t''
never\t''"
complete -c rsub -s R -d 'Do not print messages with the retain flag; MQTT 5 asks for none at all'
complete -c rsub -l retain-as-published -d 'MQTT 5 Retain As Published subscription option'
complete -c rsub -s E -d 'Exit once the subscriptions are acknowledged'
complete -c rsub -l retained-only -d 'Print only retained messages and exit once they have all arrived'
complete -c rsub -l remove-retained -d 'Clear every retained message received (publishes an empty retained one)'
complete -c rsub -s v -l verbose -d 'Print `topic payload`'
complete -c rsub -s N -d 'No newline after each message'
complete -c rsub -l pretty -d 'Multi-line JSON for %j and %J'
complete -c rsub -l json -d 'One JSON object a line: topic, qos, retain, time, payload (or payload_base64), properties. rpub --json reads the same lines'
complete -c rsub -l nodelay -d 'Disable Nagle\'s algorithm (always on in rsub/rpub; accepted for scripts)'
complete -c rsub -s c -l disable-clean-session -d 'Persistent session (needs -i)'
complete -c rsub -l will-retain
complete -c rsub -l insecure -d 'Do not check that the certificate names the host (the chain is still checked)'
complete -c rsub -l tls-use-os-certs -d 'Trust the operating system\'s CA certificates; turns TLS on'
complete -c rsub -s S -d 'DNS SRV lookup'
complete -c rsub -s d -l debug -d 'Print every packet sent and received (on stdout, as mosquitto)'
complete -c rsub -l quiet -d 'Print no runtime errors'
complete -c rsub -l help -d 'Print help'
complete -c rsub -l version -d 'Print the version'
