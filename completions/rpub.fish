complete -c rpub -s t -l topic -d 'Topic to publish to' -r
complete -c rpub -s m -l message -d 'The payload' -r
complete -c rpub -s f -l file -d 'Send this file\'s contents as the payload' -r -F
complete -c rpub -s q -l qos -d 'QoS: 0, 1 or 2' -r
complete -c rpub -l repeat -d 'Publish the -m/-f/-s/-n message this many times' -r
complete -c rpub -l repeat-delay -d 'Seconds (fractions allowed) between repeats' -r
complete -c rpub -s h -l host -d 'Broker host [default: localhost]' -r
complete -c rpub -s p -l port -d 'Port [default: 1883, or 8883 with --cafile/--capath]' -r
complete -c rpub -l unix -d 'Connect through this unix socket instead of TCP' -r
complete -c rpub -s L -l url -d 'mqtt(s)://[user[:password]@]host[:port]/topic, or ws(s)://[user[:password]@]host[:port][/path] for MQTT over WebSockets (topics from -t)' -r
complete -c rpub -s A -d 'Local address to connect from' -r
complete -c rpub -s V -l protocol-version -d 'MQTT version: mqttv31 (31), mqttv311 (311, default) or mqttv5 (5)' -r
complete -c rpub -s i -l id -d 'Client id [default: none sent; the broker assigns one]' -r
complete -c rpub -s I -l id-prefix -d 'Client id prefix; the process id is appended' -r
complete -c rpub -s k -l keepalive -d 'Keep-alive in seconds, 5 to 65535 [default: 60]' -r
complete -c rpub -s x -d 'MQTT 5 session expiry in seconds; -1 or ∞ for never' -r
complete -c rpub -s M -d 'Most QoS 1/2 messages in flight at once [default: 20]' -r
complete -c rpub -s u -l username -r
complete -c rpub -s P -l pw -d 'Password (visible in ps; prefer --pw-file or MQTT_PASSWORD)' -r
complete -c rpub -l pw-file -d 'Read the password from the first line of FILE' -r -F
complete -c rpub -s D -l property -d 'MQTT 5 property: -D COMMAND PROPERTY VALUE (user-property takes KEY VALUE)' -r
complete -c rpub -l will-topic -r
complete -c rpub -l will-payload -r
complete -c rpub -l will-qos -r
complete -c rpub -l cafile -d 'PEM file of CA certificates to trust; turns TLS on' -r -F
complete -c rpub -l capath -d 'Directory of PEM CA certificates to trust; turns TLS on' -r -F
complete -c rpub -l cert -d 'Client certificate (PEM), with --key' -r -F
complete -c rpub -l key -d 'Client private key (PEM), with --cert' -r -F
complete -c rpub -l tls-alpn -d 'ALPN protocol to offer' -r
complete -c rpub -l tls-version -d 'Lowest TLS version: tlsv1.2 (default) or tlsv1.3' -r
complete -c rpub -l ciphers -d 'OpenSSL cipher list (rustls chooses its own safe suites)' -r
complete -c rpub -l tls-engine -r
complete -c rpub -l keyform -r
complete -c rpub -l tls-engine-kpass-sha1 -r
complete -c rpub -l psk -r
complete -c rpub -l psk-identity -r
complete -c rpub -l proxy -r
complete -c rpub -l color -d 'Colour human output: auto (a terminal, and NO_COLOR unset), always, never' -r -f -a "auto\t'When stdout is a terminal and NO_COLOR is not set'
always\t''
never\t''"
complete -c rpub -s s -l stdin-file -d 'Send all of stdin as one message'
complete -c rpub -s l -l stdin-line -d 'Send each line of stdin as a message, over one connection'
complete -c rpub -s n -l null-message -d 'Send an empty message'
complete -c rpub -l json -d 'Read JSON lines (as rsub --json prints them) from stdin and publish each'
complete -c rpub -s r -l retain -d 'Retain the message'
complete -c rpub -l nodelay -d 'Disable Nagle\'s algorithm (always on in rsub/rpub; accepted for scripts)'
complete -c rpub -s c -l disable-clean-session -d 'Persistent session (needs -i)'
complete -c rpub -l will-retain
complete -c rpub -l insecure -d 'Do not check that the certificate names the host (the chain is still checked)'
complete -c rpub -l tls-use-os-certs -d 'Trust the operating system\'s CA certificates; turns TLS on'
complete -c rpub -s S -d 'DNS SRV lookup'
complete -c rpub -s d -l debug -d 'Print every packet sent and received (on stdout, as mosquitto)'
complete -c rpub -l quiet -d 'Print no runtime errors'
complete -c rpub -l help -d 'Print help'
complete -c rpub -l version -d 'Print the version'
