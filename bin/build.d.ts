// Types of bin/build.js (plain JavaScript: it runs before anything is compiled).
export declare const ROOT: string;
export declare function distIsFresh(root?: string): boolean;
export declare function build(root?: string): Promise<{ readonly files: number; readonly ms: number }>;
export declare function buildIfStale(root?: string): Promise<{ readonly built: boolean; readonly files?: number; readonly ms?: number }>;
