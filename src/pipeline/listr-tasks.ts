/** The steps as listr2 tasks: a live display on a terminal, plain lines (progress throttled) otherwise. */
import { Listr, PRESET_TIMER, type ListrTask } from 'listr2';
import { ProgressThrottle, rendersLive } from '../util/progress-throttle.js';
import type { RunStep } from './run.js';
import type { AnyStep, StepReporter } from './step.js';

export async function runAsListr(
  steps: readonly AnyStep[],
  ctx: object,
  runStep: RunStep,
  options: { renderer: 'default' | 'simple'; showErrors: boolean },
): Promise<void> {
  const tasks: ListrTask[] = steps.map((step) => ({
    title: step.title,
    skip: () => step.skip?.(ctx) ?? false,
    task: async (_c, task) => {
      const output = new ProgressThrottle(
        (text) => {
          task.output = text;
        },
        { throttle: !rendersLive(list) },
      );
      const report: StepReporter = {
        status: (text) => output.progress(text),
        note: (text) => output.note(text),
        title: (text) => {
          task.title = text;
        },
      };
      try {
        await runStep(step, report);
      } finally {
        output.flush();
      }
    },
  }));
  const list = new Listr(tasks, {
    concurrent: false,
    exitOnError: true,
    renderer: options.renderer,
    fallbackRenderer: 'simple',
    rendererOptions: { timer: PRESET_TIMER, collapseSubtasks: false, ...(options.showErrors ? {} : { showErrorMessage: false }) },
    fallbackRendererOptions: { timer: PRESET_TIMER },
    // Ctrl-C is the caller's signal to handle; listr2 must not exit the process itself.
    registerSignalListeners: false,
  } as ConstructorParameters<typeof Listr>[1]);
  await list.run();
}
