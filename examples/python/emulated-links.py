# A path through emulated wide-area links: latency, loss and capacity are
# enforced by the facility's network emulator (netem here).
from mergexp import *

net = Network('emulated-wan', emulation == netem, addressing == ipv4, routing == static)

src = net.node('src')
mid = net.node('mid')
dst = net.node('dst')

net.connect([src, mid], latency == ms(10), capacity == mbps(50))
lossy = net.connect([mid, dst], latency == ms(25), loss == 0.02, capacity == mbps(10))
lossy[dst].socket.addrs = ip4('10.1.0.2/24')
lossy[mid].socket.addrs = ip4('10.1.0.1/24')

experiment(net)
