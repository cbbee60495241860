# Node names resolve to infranet addresses, and emulation uses click.
from mergexp import *

net = Network('hello', routing == static, experimentnetresolution == False, emulation == click)
a = net.node('a')
r = net.node('r')
b = net.node('b')

link0 = net.connect([a, r], latency == us(500))
link1 = net.connect([b, r], latency == us(500))

link0[a].socket.addrs = ip4('10.0.0.1/24')
link0[r].socket.addrs = ip4('10.0.0.2/24')
link1[r].socket.addrs = ip4('10.0.1.2/24')
link1[b].socket.addrs = ip4('10.0.1.1/24')

experiment(net)
