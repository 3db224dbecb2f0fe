using System.Runtime.CompilerServices;

// Test hooks (e.g. AlignmentTrainer.StepHook for the GC stress test) are internal.
[assembly: InternalsVisibleTo("MLNet.Align.Tests")]
