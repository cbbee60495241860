from mergexp import *

net = Network('hello mx')
a = net.node('a', proc.cores > 2, memory.capacity <= gb(4), platform == 'x86_64')
b = net.node('b', disk.capacity >= gb(100))
lan = net.connect([a, b], latency == ms(5))
lan[a].socket.addrs = ip4('10.0.0.1/24')
lan[b].socket.addrs = ip4('10.0.0.2/24')
lan.properties['role'] = 'lan'
experiment(net)
