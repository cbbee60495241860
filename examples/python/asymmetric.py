# One link, two directions: what b sends to a crosses a slow downlink
# (2 Mbit/s, 30 ms); a's uplink to b keeps the link's 10 Mbit/s and 10 ms.
# Twin of ../asymmetric.ts: both compile to the same XIR.
from mergexp import *

net = Network('asymmetric', addressing == ipv4, routing == static)

a = net.node('a', image == 'busybox', proc.cores >= 1, memory.capacity >= gb(1))
b = net.node('b', image == 'busybox', proc.cores >= 1, memory.capacity >= gb(1))

wire = net.connect([a, b], latency == ms(10), capacity == mbps(10), name='wire')
wire.toward(a, capacity == mbps(2), latency == ms(30))

experiment(net)
