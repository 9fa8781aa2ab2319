// The resource graph (Argo CD-like): a CloudConfig's inputs → CloudConfig → Devices, Device → Hardware →
// Workflow → IP addresses, each node badged with its health and linking to its page; laid out by elkjs in a
// worker, drawn by @xyflow/react.
// This module and its libraries are a lazy chunk: other pages do not load them.
import { useEffect, useMemo, useState } from 'react';
import { Background, Controls, Handle, Position, ReactFlow, type Edge, type Node, type NodeHandle, type NodeProps } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useScope } from '../app';
import { HEALTH_LABEL } from '../health';
import { useLive } from '../live';
import { R } from '../resources';
import { linkProps, navigate } from '../router';
import { buildGraph, type GraphNode } from '../graph/model';
import { layout, NODE_H, NODE_W } from '../graph/layout';
import { servedResources } from '../api';

type FlowNode = Node<{ node: GraphNode }, 'resource'>;

function ResourceNode({ data }: NodeProps<FlowNode>) {
  const n = data.node;
  return (
    <div className={`gnode gnode-${n.health}${n.folded ? ' gnode-folded' : ''}`} data-kind={n.kind} data-health={n.health} data-testid="graph-node">
      <Handle type="target" position={Position.Left} />
      <div className="gnode-kind">
        {n.kind}
        {n.folded ? ` ×${n.folded}` : ''}
        <span className={`badge badge-${n.health}`}>{HEALTH_LABEL[n.health]}</span>
      </div>
      <div className="gnode-label">{n.label}</div>
      {n.sub && <div className="gnode-sub">{n.sub}</div>}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

const nodeTypes = { resource: ResourceNode };

// Every node is drawn at the size the layout gives it (NODE_W × NODE_H; the box fills it, styles.css), with its two
// handles in the middle of its sides, all declared rather than measured. React Flow hides a node it has not
// measured (visibility: hidden) and draws no edge to it; it forgets the measurement whenever `nodes` is passed
// anew, and measures again only when its own state flips. A new `nodes` landing just as a measurement does — a
// layout finishing while the browser is busy — leaves the node unmeasured for good: hidden, without edges,
// until the page is reloaded. A declared size and declared handles need no measurement.
const HANDLES: NodeHandle[] = [
  { type: 'target', position: Position.Left, x: 0, y: NODE_H / 2 - 0.5, width: 1, height: 1 },
  { type: 'source', position: Position.Right, x: NODE_W - 1, y: NODE_H / 2 - 0.5, width: 1, height: 1 },
];

export default function GraphPage() {
  const { namespaces, session } = useScope();
  const [served, setServed] = useState<Set<string>>();
  useEffect(() => {
    void servedResources().then(setServed, () => setServed(new Set()));
  }, []);
  const hasCloudConfig = served?.has('metalplane.dev/cloudconfigs') ?? false;
  const devices = useLive(R.devices, namespaces);
  const workflows = useLive(R.workflows, namespaces);
  const hardware = useLive(R.hardware, 'all', session.operator);
  const cloudConfigs = useLive(R.cloudConfigs, namespaces, hasCloudConfig);
  const graph = useMemo(
    () => buildGraph({ devices: devices.items, workflows: workflows.items, hardware: hardware.items, cloudConfigs: cloudConfigs.items }),
    [devices.items, workflows.items, hardware.items, cloudConfigs.items],
  );
  const [positions, setPositions] = useState<Map<string, { x: number; y: number }>>();
  const [layoutError, setLayoutError] = useState<string>();
  // Layout again only when the shape changes (not on every status update).
  const shape = graph.nodes.map((n) => n.id).join(',') + '|' + graph.edges.map((e) => e.id).join(',');
  useEffect(() => {
    let stale = false;
    layout(graph).then(
      (p) => !stale && setPositions(p),
      (e: unknown) => !stale && setLayoutError(e instanceof Error ? e.message : String(e)),
    );
    return () => {
      stale = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  const flowNodes: FlowNode[] = graph.nodes.map((n) => ({
    id: n.id,
    type: 'resource',
    position: positions?.get(n.id) ?? { x: 0, y: 0 },
    width: NODE_W,
    height: NODE_H,
    handles: HANDLES,
    data: { node: n },
    ariaLabel: `${n.kind} ${n.label}: ${HEALTH_LABEL[n.health]}`,
  }));
  const flowEdges: Edge[] = graph.edges.map((e) => ({ id: e.id, source: e.source, target: e.target }));
  const loading = devices.status === 'loading' || !positions;

  return (
    <section aria-labelledby="graph-title" className="graph-page">
      <h1 id="graph-title">Resource graph</h1>
      {devices.status === 'error' && <p className="error" role="alert">{devices.error}</p>}
      {layoutError && <p className="error" role="alert">Layout failed: {layoutError}</p>}
      {devices.status === 'live' && devices.items.length === 0 && cloudConfigs.items.length === 0 ? (
        <p className="empty">
          Nothing to draw: the project has no devices or CloudConfigs. <a {...linkProps('devices/new')}>Create a device</a>.
        </p>
      ) : (
        <>
          {graph.omitted > 0 && <p className="notice">{graph.omitted} healthy devices are not drawn (the graph keeps the unhealthy ones first).</p>}
          <div className="graph" data-testid="graph" aria-busy={loading}>
            {loading && <p className="muted" role="status">Laying out…</p>}
            {positions && (
              <ReactFlow
                nodes={flowNodes}
                edges={flowEdges}
                nodeTypes={nodeTypes}
                fitView
                nodesDraggable={false}
                nodesConnectable={false}
                proOptions={{ hideAttribution: true }}
                onNodeClick={(_e, n) => n.data.node.link && navigate(n.data.node.link)}
                minZoom={0.2}
              >
                <Background />
                <Controls showInteractive={false} />
              </ReactFlow>
            )}
          </div>
          <details>
            <summary>The graph as a list</summary>
            <ul className="plain">
              {graph.nodes.map((n) => (
                <li key={n.id}>
                  {n.kind} {n.link ? <a {...linkProps(n.link)}>{n.label}</a> : n.label} — {HEALTH_LABEL[n.health]}
                </li>
              ))}
            </ul>
          </details>
        </>
      )}
    </section>
  );
}
