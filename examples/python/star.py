# A control node with point-to-point links to satellites and ground stations,
# each link its own /24 (after a published Merge model).
from mergexp import *

net = Network('multinode', routing == static)

cm = net.node('cm')
vehicles = [net.node('landsat{}'.format(i)) for i in range(4, 10)]
stations = [net.node(n) for n in ['quincy', 'boardman', 'honolulu', 'stockholm']]

value = 16
for v in vehicles:
    l = net.connect([v, cm])
    l[v].socket.addrs = ip4('10.0.%d.1/24' % value)
    l[cm].socket.addrs = ip4('10.0.%d.2/24' % value)
    value += 1

value = 32
for g in stations:
    l = net.connect([g, cm], latency == ms(40))
    l[g].socket.addrs = ip4('10.0.%d.1/24' % value)
    l[cm].socket.addrs = ip4('10.0.%d.2/24' % value)
    value += 1

experiment(net)
