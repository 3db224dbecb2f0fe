namespace MLNet.Align.Projection;

/// <summary>The per-step learning rate of <see cref="AlignmentTrainer"/>: linear from WarmupStartLearningRate to
/// LearningRate over WarmupSteps (at most the run's length), then cosine to MinLearningRate at the last step.</summary>
internal sealed class WarmupCosineSchedule(AlignmentTrainingOptions options, long totalSteps)
{
    /// <summary>The rate of 0-based global <paramref name="step"/>.</summary>
    public double At(long step) => At(options, step, totalSteps);

    /// <summary>The rate of 0-based global <paramref name="step"/> of <paramref name="totalSteps"/>.</summary>
    public static double At(AlignmentTrainingOptions o, long step, long totalSteps)
    {
        long warm = Math.Min(o.WarmupSteps, totalSteps);
        if (step < warm) return o.WarmupStartLearningRate + (o.LearningRate - o.WarmupStartLearningRate) * step / warm;
        double progress = (double)(step - warm) / Math.Max(1, totalSteps - warm);
        return o.MinLearningRate + 0.5 * (o.LearningRate - o.MinLearningRate) * (1 + Math.Cos(Math.PI * Math.Min(1.0, progress)));
    }
}
