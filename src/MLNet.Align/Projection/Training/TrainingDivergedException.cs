namespace MLNet.Align.Projection;

/// <summary>
/// Thrown by <see cref="AlignmentTrainer.Fit"/> and <see cref="AlignmentTrainer.Resume"/> when training stops being
/// finite: a step's loss is NaN or infinite, the weights hold a NaN or an infinity at an epoch end or before a
/// checkpoint, or the validation embeddings do. Nothing is written from the diverged state: the last checkpoint on disk
/// is the last finite one, and no model is returned. The message names the epoch, the step and the likely causes.
/// </summary>
public sealed class TrainingDivergedException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What went non-finite, where, and the likely causes.</param>
    /// <param name="epoch">1-based epoch in which it happened.</param>
    /// <param name="step">1-based global step (the steps completed when it was found at an epoch end).</param>
    public TrainingDivergedException(string message, int epoch, long step) : base(message)
    {
        Epoch = epoch;
        Step = step;
    }

    /// <summary>1-based epoch in which training diverged.</summary>
    public int Epoch { get; }
    /// <summary>1-based global step at which training diverged.</summary>
    public long Step { get; }
}
