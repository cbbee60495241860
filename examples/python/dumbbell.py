# A dumbbell: two groups of hosts, each behind a router, the routers joined
# by a 100 Mbit/s bottleneck. Merge assigns addresses and static routes.
from mergexp import *

net = Network('dumbbell', routing == static, addressing == ipv4)

left = [net.node('l%d' % i) for i in range(3)]
right = [net.node('r%d' % i) for i in range(3)]
rl = net.node('router-left', proc.cores >= 2)
rr = net.node('router-right', proc.cores >= 2)

for h in left:
    net.connect([h, rl], capacity == gbps(1))
for h in right:
    net.connect([h, rr], capacity == gbps(1))

bottleneck = net.connect([rl, rr], capacity == mbps(100))

experiment(net)
