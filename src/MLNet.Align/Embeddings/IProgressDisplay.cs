namespace MLNet.Align.Embeddings;

/// <summary>Shows the progress of a long step such as encoding a pairs file. The command-line tool draws a progress bar;
/// a library caller may log, or pass nothing for silence.</summary>
public interface IProgressDisplay
{
    /// <summary>Runs <paramref name="work"/> as one step of <paramref name="total"/> items; the callback that
    /// <paramref name="work"/> receives takes the number of items done so far (absolute, not a delta).</summary>
    /// <typeparam name="T">What the step returns.</typeparam>
    /// <param name="title">One-line description of the step.</param>
    /// <param name="total">Items the step will process (0 when unknown).</param>
    /// <param name="work">The step.</param>
    T Run<T>(string title, long total, Func<IProgress<long>, T> work);
}
