# A web server reachable from outside the experiment, and a client.
from mergexp import *

net = Network('web', addressing == ipv4)

web = net.node('web', image == 'bullseye', proc.cores >= 2)
client = net.node('client')
web.ingress(http, 80)  # the protocol by name, as published models write it
web.ingress('tcp', 8443)

net.connect([web, client])

experiment(net)
