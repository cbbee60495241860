# Two nodes on one link, addresses given by hand: the Merge "hello world".
from mergexp import *

# Create a network topology object.
net = Network('hello-world')

# Create two nodes.
a = net.node('a')
b = net.node('b')

# Create a link connecting the two nodes.
link = net.connect([a, b])

# Give each node an address on the link.
link[a].socket.addrs = ip4('10.0.0.1/24')
link[b].socket.addrs = ip4('10.0.0.2/24')

# Make this file a runnable experiment based on our two node topology.
experiment(net)
