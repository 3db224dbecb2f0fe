using System.Text.Json;
using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>Paired retrieval on a validation set: Recall@K in both directions (fractions in [0, 1]; pair i is the only
/// positive of image i and of text i) and the symmetric InfoNCE at the current temperature.</summary>
public sealed record ValidationMetrics(int Count, double ImageToTextR1, double ImageToTextR5, double ImageToTextR10,
    double TextToImageR1, double TextToImageR5, double TextToImageR10, double Loss)
{
    /// <summary>Mean of both directions' Recall@1.</summary>
    public double MeanRecallAt1 => (ImageToTextR1 + TextToImageR1) / 2;
    /// <summary>Sum of the six recalls (in [0, 6]).</summary>
    public double RecallSum => ImageToTextR1 + ImageToTextR5 + ImageToTextR10 + TextToImageR1 + TextToImageR5 + TextToImageR10;

    /// <summary>Computes the metrics from L2-normalised embeddings [n, E] (row i of each is a pair).</summary>
    /// <param name="images">Image embeddings [n, E].</param>
    /// <param name="texts">Text embeddings [n, E].</param>
    /// <param name="temperature">tau of the validation loss.</param>
    /// <param name="groups">Positive group of every row [n] (<see cref="MLNet.Align.Projection.IAlignmentDataSource.GroupIds"/>),
    /// or null. With groups the recall cannot be fooled by duplicate captions: any row of the true row's group is a
    /// correct answer, and candidates outside the group that score equal to the best correct one rank above it (a
    /// collapsed model scores 0). Without groups row i is the only positive and ties count in its favour.</param>
    /// <exception cref="ArgumentException">A similarity is NaN or infinite (it would compare false with every other and
    /// count as a hit): the embeddings are not finite.</exception>
    public static ValidationMetrics Compute(Tensor images, Tensor texts, double temperature, IReadOnlyList<long>? groups = null)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long n = images.shape[0];
        var sim = images.matmul(texts.t());
        long bad = sim.numel() - isfinite(sim).sum().item<long>();
        if (bad > 0)
            throw new ArgumentException($"{bad:N0} of the {n} x {n} validation similarities are NaN or infinite: the embeddings are not finite (a diverged model or non-finite features); such a model has no Recall.");
        Tensor rankI2T, rankT2I;
        if (groups is null)
        {
            var diag = sim.diagonal().unsqueeze(1);
            // Rank of the positive = number of candidates scoring strictly higher (ties count in the positive's favour).
            rankI2T = (sim > diag).sum(1).to(ScalarType.Int64);
            rankT2I = (sim.t() > diag).sum(1).to(ScalarType.Int64);
        }
        else
        {
            if (groups.Count != n) throw new ArgumentException($"{groups.Count} group ids for {n} validation rows.", nameof(groups));
            var g = tensor(groups.ToArray());
            var same = g.unsqueeze(1).eq(g.unsqueeze(0));
            Tensor Rank(Tensor s)
            {
                // The best correct answer of each query, then every other-group candidate reaching it (ties against).
                var best = TorchScalars.MaskedFill(s, same.logical_not(), double.NegativeInfinity).max(1).values.unsqueeze(1); // scalar kept alive (TorchScalars)
                return s.ge(best).logical_and(same.logical_not()).sum(1).to(ScalarType.Int64);
            }
            rankI2T = Rank(sim);
            rankT2I = Rank(sim.t());
        }
        // Number operands through TorchScalars: implicit scalars can be freed by the GC mid-op (issue 10's "toLong" crash).
        double R(Tensor rank, int k) => TorchScalars.LessThan(rank, k).to(ScalarType.Float32).mean().item<float>();
        var logits = TorchScalars.Div(sim, temperature);
        var labels = TorchScalars.Range(n);
        double loss = ContrastiveLosses.SymmetricCrossEntropy(logits, labels).item<float>();
        return new ValidationMetrics((int)n, R(rankI2T, 1), R(rankI2T, 5), R(rankI2T, 10), R(rankT2I, 1), R(rankT2I, 5), R(rankT2I, 10), loss);
    }
}

/// <summary>One optimisation step.</summary>
public sealed record StepLog(long Step, int Epoch, double Loss, double LearningRate, double Temperature);

/// <summary>One epoch: mean training loss, validation metrics (null without validation) and the selection value.</summary>
public sealed record EpochLog(int Epoch, long Steps, double MeanLoss, ValidationMetrics? Validation, double? Selection,
    bool Improved, double Seconds);

/// <summary>Progress of a training run, reported after every step and after every epoch's validation.</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="Epochs">Planned epochs.</param>
/// <param name="Step">Completed global steps.</param>
/// <param name="TotalSteps">Planned global steps.</param>
/// <param name="Loss">Last step's symmetric InfoNCE.</param>
/// <param name="LearningRate">Learning rate used by the last step.</param>
/// <param name="Temperature">tau after the last step's clamp.</param>
/// <param name="StepsPerSecond">Throughput since this call started (or resumed).</param>
/// <param name="Validation">Set on epoch-end reports when validation ran.</param>
/// <param name="Selection">Selection value on epoch-end reports.</param>
public sealed record TrainingProgress(int Epoch, int Epochs, long Step, long TotalSteps, double Loss, double LearningRate,
    double Temperature, double StepsPerSecond, ValidationMetrics? Validation = null, double? Selection = null);

/// <summary>The full record of a run: per-step loss, per-epoch metrics, best epoch, why it stopped. JSON-serialisable.</summary>
public sealed record TrainingHistory
{
    /// <summary>One entry per optimisation step, in order (kept across resumed sessions).</summary>
    public List<StepLog> Steps { get; init; } = new();
    /// <summary>One entry per completed epoch, in order; with <see cref="AlignmentTrainingOptions.SelectInitialModel"/>
    /// a first entry of epoch -1 (0 steps, NaN loss) records the initial weights' metrics.</summary>
    public List<EpochLog> Epochs { get; init; } = new();
    /// <summary>Selection metric name.</summary>
    public SelectionMetric Metric { get; init; }
    /// <summary>0-based best epoch (-1 = the initial model, with SelectInitialModel), or null without a selection metric.
    /// This is the index stored in training.json and in <see cref="EpochLog.Epoch"/>; console lines (the trainer's
    /// "epoch N/E" log, `train`'s summary) count from 1.</summary>
    public int? BestEpoch { get; set; }
    /// <summary>Best selection value.</summary>
    public double? BestScore { get; set; }
    /// <summary>"completed", "early-stopped" (patience) or "running".</summary>
    public string StopReason { get; set; } = "running";
    /// <summary>Wall-clock seconds of training, summed over resumed sessions.</summary>
    public double Seconds { get; set; }
    /// <summary>With <see cref="AlignmentTrainingOptions.Loss"/> = Sigmoid: the learned logit scale t = exp(t') after the
    /// last step (the model's temperature is 1/t of the epoch whose weights it keeps, see
    /// <see cref="AlignmentTrainingOptions.RestoreBestWeights"/>); null otherwise.</summary>
    public double? SigmoidLogitScale { get; set; }
    /// <summary>With <see cref="AlignmentTrainingOptions.Loss"/> = Sigmoid: the learned bias b at the end of training
    /// (the last step's value, not the best epoch's); null otherwise.</summary>
    public double? SigmoidBias { get; set; }

    /// <summary>Indented JSON, enums as strings, NaN written as "NaN".</summary>
    public string ToJson() => JsonSerializer.Serialize(this, AlignmentJson.Options);
    /// <summary>Parses what <see cref="ToJson"/> wrote.</summary>
    /// <param name="json">A training history as JSON.</param>
    /// <exception cref="JsonException">The text is not a training history (or is JSON null).</exception>
    public static TrainingHistory FromJson(string json)
        => JsonSerializer.Deserialize<TrainingHistory>(json, AlignmentJson.Options) ?? throw new JsonException("The training history JSON is null.");
}

/// <summary>What a bundle records about the run that produced it.</summary>
public sealed record TrainingSummary(AlignmentTrainingOptions Options, long TrainRows, long ValidationRows, int EpochsCompleted,
    long Steps, int? BestEpoch, double? BestScore, SelectionMetric Metric, ValidationMetrics? BestValidation, string StopReason,
    double Seconds);
