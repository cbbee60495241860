# Nodes that ask for particular hardware and images, sorted into groups for
# Ansible inventories.
from mergexp import *

net = Network('node-constraints', addressing == ipv4, routing == static)

server = net.node('server', metal == True, image == '2004', memory.capacity == gb(8), proc.cores == 4)
db = net.node('db', metal == True, disk.capacity >= gb(200), memory.capacity >= gb(16))
clients = [net.node('client%d' % i, metal == False, image == '2004', proc.cores >= 1, memory.capacity >= mb(512))
           for i in range(4)]

server.properties['group'] = ['servers']
db.properties['group'] = ('servers', 'storage')
for c in clients:
    c.properties['group'] = ['clients']

net.connect([server, db])
net.connect([server] + clients)

experiment(net)
