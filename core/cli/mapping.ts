import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { HubError } from '../errors.ts';
import { validateMapping } from '../mapping/validate.ts';
import type { App } from '../app.ts';
import { withApp } from './context.ts';

async function readDocument(file: string): Promise<Record<string, unknown>> {
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new HubError('HUB_ERR_USAGE', `cannot read ${file} (${err.code}); give the path of a JSON mapping document`);
  });
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new HubError('HUB_ERR_MAPPING', `${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * Reach the mapping source (CouchDB or the file) for a command: its failures
 * become sentences. CouchDB's already are; a file's say what to check.
 */
async function atSource<T>(app: App, action: (source: App['cradle']['mappingSource']) => Promise<T>): Promise<T> {
  const source = app.cradle.mappingSource;
  try {
    return await action(source);
  } catch (err) {
    const { code, syscall, message } = err as NodeJS.ErrnoException;
    const reason = syscall ? `cannot write ${source.description} (${code}); check that its folder exists and is writable, or set MAPPING_FILE` : message;
    throw new HubError('HUB_ERR_MAPPING', app.cradle.redactor.redact(reason), { cause: err });
  }
}

function check(app: App, document: unknown, revision: string): void {
  const result = validateMapping(document, revision, app.cradle.targetRules);
  if (!result.ok) throw new HubError('HUB_ERR_MAPPING', `the mapping does not validate; fix these and try again:\n  ${result.errors.join('\n  ')}`);
  process.stdout.write(`valid: ${result.mapping.groups.size} group(s)\n`);
}

export function mappingCommand(): Command {
  const mapping = new Command('mapping').description('read, check and write the mapping document (CouchDB, or the mapping file)');
  mapping
    .command('get')
    .description('print the mapping document in force at the source')
    .action(async () => {
      await withApp(async (app) => {
        const current = await atSource(app, (source) => source.get());
        if (!current?.document) throw new HubError('HUB_ERR_NOT_FOUND', `no mapping document at ${app.cradle.mappingSource.description}; write one with hub mapping put <file>`);
        process.stdout.write(`${JSON.stringify(current.document, null, 2)}\n`);
      });
    });
  mapping
    .command('validate')
    .description('check a mapping document (a file, or the one at the source) against the installed plugins')
    .argument('[file]', 'a JSON mapping document')
    .action(async (file: string | undefined) => {
      await withApp(async (app) => {
        const document = file ? await readDocument(file) : (await atSource(app, (source) => source.get()))?.document;
        if (!document) throw new HubError('HUB_ERR_NOT_FOUND', `no mapping document at ${app.cradle.mappingSource.description}`);
        check(app, document, file ?? 'source');
      });
    });
  mapping
    .command('put')
    .description('validate a mapping document, then write it to the source (running hubs pick it up within a second)')
    .argument('<file>', 'a JSON mapping document')
    .action(async (file: string) => {
      await withApp(async (app) => {
        const document = await readDocument(file);
        check(app, document, file);
        process.stdout.write(`written: revision ${await atSource(app, (source) => source.put(document))}\n`);
      });
    });
  return mapping;
}
