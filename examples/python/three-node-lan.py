# Three nodes on one LAN; Merge assigns the addresses and static routes.
from mergexp import *

net = Network('lan-of-three', addressing == ipv4, routing == static)

a, b, c = [net.node(name) for name in ['a', 'b', 'c']]

lan = net.connect([a, b, c])

experiment(net)
