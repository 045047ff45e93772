complete -c rbroker -s c -l config-file -d 'Read the configuration from this mosquitto.conf file' -r -F
complete -c rbroker -s p -l port -d 'Listen on this port (repeatable). Without -c, the broker listens on loopback only; with a config file that defines listeners, -p is ignored' -r
complete -c rbroker -s v -l verbose -d 'Verbose: enable every log type, overriding the config file\'s logging'
complete -c rbroker -s d -l daemon -d 'Run in the background as a daemon (configuration errors are reported first)'
complete -c rbroker -s h -l help -d 'Print the usage and exit (status 3, as mosquitto)'
complete -c rbroker -l version -d 'Print the version and exit'
