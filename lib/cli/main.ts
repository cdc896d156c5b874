// The gradvault command line: one commander program; each command lives in
// its own file of this folder.
import * as os from 'node:os';
import { Command, CommanderError, InvalidArgumentError as ArgError, Option } from 'commander';
import { MODES } from '../config';
import { GradvaultError } from '../errors';
import { MODELS } from '../trainer';
import { UsageError, int, intList, list, positive } from './args';
import { bench } from './bench';
import { demo } from './demo';
import { inspect } from './inspect';
import { exportCommand } from './export';
import { predictCommand } from './predict';
import { start } from './start';
import { keygen, server } from './server';
import { launch } from './launch';
import { makeData } from './make';
import { train } from './train';
import { VERSION } from './version';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program.name('gradvault').description('Asynchronous, parallel gradient training without races').version(VERSION).exitOverride().showHelpAfterError(false);
  program.configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const dataOptions = (c: Command) =>
    c
      .option('--data <file>', 'IDX images, LIBSVM or CSV file, or synthetic:sparse-logistic|blobs|ratings (default: Fashion-MNIST if installed, else synthetic)')
      .addOption(new Option('--format <format>', 'file format (default: from the file name)').choices(['idx', 'libsvm', 'csv']))
      .option('--labels <file>', 'IDX labels file (default: the images file name with labels-idx1)')
      .option('--label <column>', 'CSV label column (index or header name)')
      .option('--test <file>', 'test set (default: 10% of --data, or Fashion-MNIST t10k)')
      .option('--rows <n>', 'train on the first n rows', int('--rows'))
      .option('--seed <n>', 'shuffling (and synthetic data) seed', int('--seed', 0), 42);
  program
    .command('demo')
    .description('make the race visible: naive shared writes lose updates, every mode loses none; then a short training run')
    .option('--threads <n>', 'worker threads', int('--threads', 1, 256), 4)
    .option('--pushes <n>', 'updates per thread', int('--pushes', 1, 10_000_000), 2000)
    .option('--size <n>', 'numbers in the shared tensor', int('--size', 1, 1 << 24), 256)
    .option('--no-train', 'skip the training run')
    .action(async (o) => demo(o));
  program
    .command('start')
    .description('a first run: train on Fashion-MNIST (when installed) or a synthetic set of known best accuracy, predict a few rows, say what to try next')
    .option('--threads <n>', 'native threads', int('--threads', 1, 1024), Math.min(4, os.availableParallelism()))
    .action(async (o) => start(o));
  dataOptions(
    program
      .command('train')
      .description('train a built-in model on native threads')
      .addOption(new Option('--model <model>', "default: the --resume checkpoint's, else from the data (softmax, logistic, linear, mf)").choices(MODELS as string[]))
      .option('--hidden <widths>', 'mlp hidden layers, e.g. 128,64', intList('--hidden'))
      .option('--rank <n>', 'mf rank', int('--rank'))
      .addOption(new Option('--mode <mode>', 'update strategy').choices(MODES as string[]).default('atomic'))
      .option('--threads <n>', 'native threads (one per core, as the library)', int('--threads', 1, 1024), os.availableParallelism())
      .option('--epochs <n>', 'passes over the data', int('--epochs'), 5)
      .option('--batch <n>', 'rows per pushed gradient', int('--batch', 1, 65536), 32)
      .option('--lr <x>', "learning rate (default: the model's, as the library: logistic, svm 2; mf 0.5; others 0.1; adam 0.001)", positive('--lr'))
      .addOption(new Option('--optimizer <kind>', 'optimizer').choices(['sgd', 'adagrad', 'rmsprop', 'adam']).default('sgd'))
      .option('--momentum <x>', 'sgd momentum', (v) => {
        const n = Number(v);
        if (!(n >= 0 && n < 1)) throw new ArgError(`--momentum must be in [0, 1), got '${v}'`);
        return n;
      })
      .option('--save <file>', 'write a checkpoint (safetensors) at the end')
      .option('--resume <file>', 'start from a checkpoint (its model, where it records one)')
      .option('--standardize', "standardize the features with the train set's mean and standard deviation (saved in the checkpoint; predict applies it)", false)
      .option('--json', 'one JSON line per epoch and at the end', false)
      .option('--progress-every <ms>', 'in a terminal, how often the bar redraws', int('--progress-every', 50, 60000), 250)
      .option('--report <file.html>', 'write an HTML page with the loss and throughput curves'),
  ).action(async (o) => train(o));
  dataOptions(
    program
      .command('bench')
      .description('modes x threads on one workload, beside the hogwild baseline')
      .addOption(new Option('--model <model>', 'the model (default: from the data: mf for ratings, logistic for 2 classes, softmax for more, else linear)').choices(MODELS as string[]))
      .option('--modes <list>', 'comma-separated modes', list('--modes', MODES), [...MODES])
      .option('--threads <list>', 'comma-separated thread counts', intList('--threads', 1024), [1, Math.min(2, os.availableParallelism())].filter((x, i, a) => a.indexOf(x) === i))
      .option('--epochs <n>', 'epochs per run', int('--epochs'), 1)
      .option('--batch <n>', 'batch size', int('--batch', 1, 65536), 32)
      .option('--lr <x>', "learning rate (default: the model's, as train)", positive('--lr'))
      .option('--json', 'JSON output', false),
  ).action(async (o) => bench(o));
  program
    .command('data')
    .description('data files to try the other commands on')
    .command('make')
    .description('write a synthetic set as a file: sparse-logistic as LIBSVM, blobs as CSV (label column y)')
    .argument('<kind>', 'sparse-logistic or blobs')
    .requiredOption('--out <file>', 'the file to write')
    .option('--rows <n>', 'rows', int('--rows', 1, 100_000_000), 20000)
    .option('--features <n>', 'features (sparse-logistic default 47236, blobs 2)', int('--features', 1, 10_000_000))
    .option('--nnz <n>', 'sparse-logistic: mean nonzeros a row (default 75)', int('--nnz', 1))
    .option('--scale <x>', 'blobs: multiply the last column by x (a column in the tens of thousands, for --standardize)', positive('--scale'))
    .option('--seed <n>', 'seed', int('--seed', 0), 42)
    .action(async (kind, o) => makeData(kind, o));
  program
    .command('inspect')
    .description("print a checkpoint's tensors, shapes, version, mode and optimizer state")
    .argument('<file>', 'a .safetensors file')
    .action(async (file) => inspect(file));
  program
    .command('predict')
    .description("a checkpoint's model on the rows of a data file: CSV (row, class and probabilities, or label and score, or value) or JSON lines; a summary on stderr")
    .requiredOption('--model <file>', 'a .safetensors checkpoint')
    .requiredOption('--data <file>', 'IDX images, LIBSVM or CSV file')
    .addOption(new Option('--format <format>', 'file format (default: from the file name)').choices(['idx', 'libsvm', 'csv']))
    .option('--labels <file>', 'IDX labels file (default: the images file name with labels-idx1)')
    .option('--label <column>', 'CSV label column (index or header name)')
    .addOption(new Option('--kind <model>', "the model (default: the checkpoint's, else from the tensor names; w, b need it)").choices(MODELS as string[]))
    .option('--out <file>', 'write here instead of stdout')
    .option('--json', 'JSON lines instead of CSV', false)
    .action(async (o) => predictCommand(o));
  program
    .command('export')
    .description("write a checkpoint's model as an ONNX file for onnxruntime (Node, web, mobile, Python)")
    .argument('<file>', 'a .safetensors checkpoint')
    .requiredOption('--onnx <file>', 'the ONNX file to write')
    .addOption(new Option('--model <model>', "default: the checkpoint's, else from the tensor names (W, b: softmax; W1, b1, ...: mlp; U, V: mf; w, b need it)").choices(MODELS as string[]))
    .option('--json', 'one JSON line: the file, its inputs and outputs', false)
    .action(async (file, o) => exportCommand(file, o));
  program
    .command('server')
    .description('run one shard of a cluster (a vault behind an authenticated socket) until SIGINT or SIGTERM')
    .option('--listen <endpoint>', 'where to listen (loopback unless told otherwise)', process.env.GRADVAULT_LISTEN ?? 'tcp://127.0.0.1:5555')
    .option('--key-file <file>', 'the cluster key (default: GRADVAULT_KEY or GRADVAULT_KEY_FILE)')
    .option('--load <file>', "resume from a checkpoint: this shard's slices of it, once a worker connects")
    .action(async (o) => server(o));
  program
    .command('keygen')
    .description('write a new cluster key (readable by its owner only)')
    .argument('<file>', 'where to write it')
    .option('--force', 'replace an existing file', false)
    .action((file, o) => keygen(file, o));
  let launched = 0;
  program
    .command('launch')
    .description('run a whole cluster on this machine: S shards, then W workers running the script (GRADVAULT_SERVERS, GRADVAULT_KEY_FILE, GRADVAULT_RANK, GRADVAULT_WORLD_SIZE set); stops all when one fails')
    .option('--servers <n>', 'shards', int('--servers', 1, 64), 1)
    .option('--workers <n>', 'worker processes', int('--workers', 1, 256), 2)
    .argument('<script>', 'the worker script (run with node)')
    .argument('[args...]', "the script's arguments")
    .action(async (script, args, o) => {
      launched = await launch(script, args, o);
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
    if (launched) return launched;
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit 0; usage errors were printed by commander as one line
      return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`gradvault: ${e.message}\n`);
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`gradvault: ${e instanceof GradvaultError ? msg : `unexpected error: ${msg}`}\n`);
    if (process.env.GRADVAULT_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}
