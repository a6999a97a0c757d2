/**
 * Starts an xopd CLI server (serve, serve-teacher) as a child process on a free loopback port and
 * reads its URL from the first stdout line ("serving ... on http://127.0.0.1:PORT ...").
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI, ensureBuilt } from './built.js';

export interface CliServer {
  url: string;
  proc: ChildProcess;
  /** everything the process wrote on stderr so far */
  stderr(): string;
  /** sends the signal and resolves with the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startCli(args: string[], env: Record<string, string> = {}): Promise<CliServer> {
  ensureBuilt();
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start within 90 s: ${err}`)), 90_000);
    proc.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${args[0]} exited with ${code} before serving: ${err}`)); });
  });
  return {
    url, proc, stderr: () => err,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
