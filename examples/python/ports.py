# NIC requirements: the link's sockets want e1000 NICs with 4 queues; a
# hand-made socket wants a 10 Gbit/s port.
from mergexp import *

net = Network('ports')

a = net.node('a', platform == 'x86_64')
b = net.node('b', host == 'x42')

link = net.connect([a, b], port.model == e1000, port.queues == 4, layer == 2)

fast_a = a.socket(port.capacity >= gbps(10))
fast_b = b.socket(port.capacity >= gbps(10), port.model == virtio)
fast = net.connect_sockets([fast_a, fast_b], capacity == gbps(10), name='fast')
fast[a].socket.addrs = ip4('192.168.1.1/24')
fast[b].socket.addrs = ip4('192.168.1.2/24')

experiment(net)
