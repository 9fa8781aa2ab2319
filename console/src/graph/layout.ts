// Lays a graph out with elkjs (layered, left to right) in a web worker, off the main thread. Loaded lazily with
// the graph page.
import ELK from 'elkjs/lib/elk-api.js';
import workerUrl from 'elkjs/lib/elk-worker.min.js?url';
import type { Graph } from './model';

let elk: InstanceType<typeof ELK> | undefined;

/** The size of every node, as laid out and as drawn (the view gives it to React Flow; the box fills it). */
export const NODE_W = 200;
/** Three lines (kind and badge, name, detail) at the node's font sizes, with its padding and border. */
export const NODE_H = 68;

export async function layout(g: Graph): Promise<Map<string, { x: number; y: number }>> {
  elk ??= new ELK({ workerUrl });
  const res = await elk.layout({
    id: 'root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.direction': 'RIGHT',
      'elk.layered.spacing.nodeNodeBetweenLayers': '60',
      'elk.spacing.nodeNode': '18',
    },
    children: g.nodes.map((n) => ({ id: n.id, width: NODE_W, height: NODE_H })),
    edges: g.edges.map((e) => ({ id: e.id, sources: [e.source], targets: [e.target] })),
  });
  return new Map((res.children ?? []).map((c) => [c.id, { x: c.x ?? 0, y: c.y ?? 0 }]));
}
