"""Graph walks the debugging tools share: values a subgraph reads from outside, node order."""

from __future__ import annotations

from pyonnx.ir import Graph, Node, Value


def captured_values(node: Node) -> list[Value]:
    """The values of enclosing graphs that the node's subgraphs (at any depth) read: the
    node's implicit inputs. Empty for a node without subgraphs."""
    defined: set[int] = set()
    used: dict[int, Value] = {}
    stack = list(node.subgraphs())
    while stack:
        g = stack.pop()
        defined.update(id(v) for v in g.inputs)
        defined.update(id(v) for v in g.initializers.values())
        defined.update(id(v) for v in g.sparse_initializers.values())
        for n in g.nodes:
            defined.update(id(v) for v in n.outputs)
            for v in n.inputs:
                if v is not None:
                    used.setdefault(id(v), v)
            stack.extend(n.subgraphs())
    return [v for k, v in used.items() if k not in defined]


def node_inputs(node: Node) -> list[Value]:
    """Every value the node reads: its inputs, then the values its subgraphs capture."""
    seen: set[int] = set()
    out: list[Value] = []
    for v in [*node.inputs, *captured_values(node)]:
        if v is not None and id(v) not in seen:
            seen.add(id(v))
            out.append(v)
    return out


def topological_order(graph: Graph) -> list[Node]:
    """The graph's nodes in an order where every node comes after the producers of what it
    reads (captured values included); ties keep the listed order. Nodes on a cycle (an invalid
    graph) come last, in listed order."""
    index = {id(n): i for i, n in enumerate(graph.nodes)}
    deps: list[set[int]] = []
    users: list[list[int]] = [[] for _ in graph.nodes]
    for i, n in enumerate(graph.nodes):
        d = {index[id(v.producer)] for v in node_inputs(n)
             if v.producer is not None and id(v.producer) in index}
        d.discard(i)
        deps.append(d)
        for j in d:
            users[j].append(i)
    import heapq

    ready = [i for i, d in enumerate(deps) if not d]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            deps[u].discard(i)
            if not deps[u]:
                heapq.heappush(ready, u)
    placed = set(order)
    order.extend(i for i in range(len(graph.nodes)) if i not in placed)
    return [graph.nodes[i] for i in order]
