# Three LANs of 25 hosts each, every LAN behind its own router, the routers
# joined in a triangle of point-to-point links. Every socket has an explicit
# address: LAN i is 10.i.0.0/24 (router .1, hosts .10 ..), router links are /30s.
from mergexp import *

net = Network('three-lans', routing == static)

LANS = 3
HOSTS = 25

routers = [net.node('router%d' % i, proc.cores >= 2, memory.capacity >= gb(4)) for i in range(LANS)]

for i in range(LANS):
    hosts = [net.node('h%d-%d' % (i, j)) for j in range(HOSTS)]
    lan = net.connect([routers[i]] + hosts)
    lan[routers[i]].socket.addrs = ip4('10.%d.0.1/24' % i)
    for j, h in enumerate(hosts):
        lan[h].socket.addrs = ip4('10.%d.0.%d/24' % (i, 10 + j))

# The triangle between routers: 172.16.k.0/30 for the k-th pair.
k = 0
for i in range(LANS):
    for j in range(i + 1, LANS):
        wan = net.connect([routers[i], routers[j]], capacity == gbps(10))
        wan[routers[i]].socket.addrs = ip4('172.16.%d.1/30' % k)
        wan[routers[j]].socket.addrs = ip4('172.16.%d.2/30' % k)
        k += 1

experiment(net)
