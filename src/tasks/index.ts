export {
  type EvalCase,
  type ReadCasesOptions,
  readCasesJsonl,
  storyPrompt,
  taskOfCaseId,
  writeCasesJsonl,
} from './cases.ts';
export {
  type GenerateTaskOptions,
  generateTaskInstances,
  isTaskName,
  renderTaskInstruction,
  TASK_GENERATORS,
  type TaskGeneration,
} from './generate.ts';
export {
  buildTaskPool,
  type DescribeTaskPoolsOptions,
  describeTaskPools,
  type TaskPoolOptions,
  type TaskPoolSummary,
} from './pools.ts';
export { buildSftExamples, type SftExample, type SftOptions } from './sft.ts';
export {
  ALL_TASKS,
  SOURCE_TASKS,
  type SourceTask,
  TARGET_TASKS,
  type TargetTask,
  type TaskInstance,
  type TaskName,
} from './types.ts';
