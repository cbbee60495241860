# A training range in the style of published lab models: an attacker, two
# targets behind a gateway, addressing and routing by Merge except on the
# attacker's link, whose addresses the lab's inventory expects.
from mergexp import *

net = Network('training-lab', addressing == ipv4, routing == static)


def host(name, img, roles, cores=2):
    n = net.node(name, image == img, proc.cores == cores, memory.capacity == gb(4), metal == False)
    n.properties['group'] = tuple(roles)  # a tuple, as some labs write it
    return n


attacker = host('attacker', '2404', ['red'], cores=8)
gateway = host('gateway', '2204', ['blue'])
targets = [host('target%d' % i, '2404', ['blue', 'targets']) for i in range(2)]

gateway.properties['group'] = list(gateway.properties['group'])
gateway.properties['group'].append('routers')

entry = net.connect([attacker, gateway], capacity == mbps(100), latency == ms(5))
entry[attacker].socket.addrs = ip4('10.0.0.1/24')
entry[gateway].socket.addrs = ip4('10.0.0.254/24')
entry.properties['tags'] = ('entry', 'monitored')

net.connect([gateway] + targets)

targets[0].ingress(http, 8080)

experiment(net)
