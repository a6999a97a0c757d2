/** The counters of `xopd serve`, rendered in Prometheus' text exposition format (GET /metrics). */

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class ServeMetrics {
  private readonly requests = new Map<string, number>();  // `${route}\u0000${status}`
  private readonly latency = new Map<string, { buckets: number[]; sum: number; count: number }>();
  private readonly teacherErrors = new Map<string, number>();  // `${teacher}\u0000${fault}`
  studentTokens = 0;
  teacherTokens = 0;
  rejected = 0;

  request(route: string, status: number, seconds: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) this.latency.set(route, (h = { buckets: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) if (seconds <= LATENCY_BUCKETS[i]!) h.buckets[i]!++;
    h.sum += seconds;
    h.count++;
  }

  teacherError(teacher: string, fault: string): void {
    const key = `${teacher}\u0000${fault}`;
    this.teacherErrors.set(key, (this.teacherErrors.get(key) ?? 0) + 1);
  }

  render(gauges: { inflight: number; queued: number; workers: number; restarts: number; draining: boolean }): string {
    const out: string[] = [];
    const head = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    head('xopd_serve_requests_total', 'counter', 'HTTP requests answered, by route and status.');
    for (const [key, n] of this.requests) {
      const [route, status] = key.split('\u0000');
      out.push(`xopd_serve_requests_total{route="${label(route!)}",status="${status}"} ${n}`);
    }
    head('xopd_serve_request_duration_seconds', 'histogram', 'Time from a request\'s arrival to its answer, by route.');
    for (const [route, h] of this.latency) {
      const r = label(route);
      LATENCY_BUCKETS.forEach((le, i) => out.push(`xopd_serve_request_duration_seconds_bucket{route="${r}",le="${le}"} ${h.buckets[i]}`));
      out.push(`xopd_serve_request_duration_seconds_bucket{route="${r}",le="+Inf"} ${h.count}`);
      out.push(`xopd_serve_request_duration_seconds_sum{route="${r}"} ${h.sum}`, `xopd_serve_request_duration_seconds_count{route="${r}"} ${h.count}`);
    }
    head('xopd_serve_student_tokens_total', 'counter', 'Student response tokens scored.');
    out.push(`xopd_serve_student_tokens_total ${this.studentTokens}`);
    head('xopd_serve_teacher_tokens_total', 'counter', 'Teacher response tokens scored (after retokenization).');
    out.push(`xopd_serve_teacher_tokens_total ${this.teacherTokens}`);
    head('xopd_serve_teacher_errors_total', 'counter', 'Requests failed by a teacher, by teacher and fault.');
    for (const [key, n] of this.teacherErrors) {
      const [teacher, fault] = key.split('\u0000');
      out.push(`xopd_serve_teacher_errors_total{teacher="${label(teacher!)}",fault="${label(fault!)}"} ${n}`);
    }
    head('xopd_serve_rejected_total', 'counter', 'Requests refused with 429 because the queue was full.');
    out.push(`xopd_serve_rejected_total ${this.rejected}`);
    head('xopd_serve_inflight', 'gauge', 'Requests being worked on.');
    out.push(`xopd_serve_inflight ${gauges.inflight}`);
    head('xopd_serve_queued', 'gauge', 'Requests waiting for a worker.');
    out.push(`xopd_serve_queued ${gauges.queued}`);
    head('xopd_serve_workers', 'gauge', 'Worker threads.');
    out.push(`xopd_serve_workers ${gauges.workers}`);
    head('xopd_serve_worker_restarts_total', 'counter', 'Worker threads that died and were replaced.');
    out.push(`xopd_serve_worker_restarts_total ${gauges.restarts}`);
    head('xopd_serve_draining', 'gauge', '1 while the server drains before exiting.');
    out.push(`xopd_serve_draining ${gauges.draining ? 1 : 0}`);
    const mem = process.memoryUsage();
    head('process_resident_memory_bytes', 'gauge', 'Resident memory of the process.');
    out.push(`process_resident_memory_bytes ${mem.rss}`);
    head('nodejs_heap_used_bytes', 'gauge', 'V8 heap in use on the main thread.');
    out.push(`nodejs_heap_used_bytes ${mem.heapUsed}`);
    return out.join('\n') + '\n';
  }
}
