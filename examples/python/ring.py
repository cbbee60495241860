# A ring of eight routers, each hop its own /30 computed with ipaddress.
import ipaddress

from mergexp import *

net = Network('ring')
N = 8
nodes = [net.node('r%d' % i, proc.cores == 2) for i in range(N)]
subnets = ipaddress.ip_network('10.10.0.0/24').subnets(new_prefix=30)

for i in range(N):
    a, b = nodes[i], nodes[(i + 1) % N]
    hop = next(subnets)
    first, second = list(hop.hosts())
    l = net.connect([a, b])
    l[a].socket.addrs = ip4('%s/30' % first)
    l[b].socket.addrs = ip4('%s/30' % second)

experiment(net)
