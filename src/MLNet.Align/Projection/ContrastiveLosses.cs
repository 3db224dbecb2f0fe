using static TorchSharp.torch;

namespace MLNet.Align.Projection;

/// <summary>The contrastive objective of <see cref="AlignmentTrainer"/> (<see cref="AlignmentTrainingOptions.Loss"/>).</summary>
public enum ContrastiveLoss
{
    /// <summary>Symmetric InfoNCE (CLIP; the Freeze-Align paper): mean of the image->text and text->image softmax
    /// cross-entropies over the batch, logits = z_img z_txt^T / tau, learnable tau.</summary>
    InfoNce,
    /// <summary>Pairwise sigmoid loss (SigLIP, Zhai et al., ICCV 2023; used for frozen-encoder alignment by SAIL,
    /// Zhang et al., CVPR 2025): -1/n sum_ij log sigmoid(z_ij (t x_i.y_j + b)), z_ij = +1 on positive pairs and -1
    /// elsewhere, with a learnable log logit scale t' (t = exp t') and a learnable bias b.</summary>
    Sigmoid,
}

/// <summary>The divergence of the structure-preserving term (<see cref="AlignmentTrainingOptions.StructureWeight"/>).</summary>
public enum StructureDivergence
{
    /// <summary>KL(P_orig || P_proj) per row (the library's original form; the default).</summary>
    Kl,
    /// <summary>Jensen-Shannon divergence JS(P_orig, P_proj) = KL(P_orig || M)/2 + KL(P_proj || M)/2 with
    /// M = (P_orig + P_proj)/2, per row: symmetric, bounded by ln 2 (STRUCTURE, Groger et al., NeurIPS 2025).</summary>
    JensenShannon,
}

/// <summary>
/// Loss terms of <see cref="AlignmentTrainer"/> on one batch of n pairs, as TorchSharp graphs (every number operand
/// through <see cref="TorchScalars"/>). Shapes: z_img, z_txt [n, E] unit rows; logits [n, n]; a positive mask
/// [n, n] bool (row i = image i, column j = text j) or null for the diagonal (one caption per image).
/// </summary>
internal static class ContrastiveLosses
{
    /// <summary>Symmetric InfoNCE: (CE(logits, q_row) + CE(logits^T, q_col)) / 2. Without a mask (or a mask equal to the
    /// identity, which callers pass as null) the targets are the diagonal and the computation is exactly
    /// <see cref="SymmetricCrossEntropy"/>. With a mask the targets of each row are uniform over its
    /// positives (SupCon, Khosla et al. 2020; UniCLIP): q_ij = P_ij / sum_j P_ij, and likewise per column for
    /// text->image: loss = -(1/2n) [ sum_i sum_j q_ij log softmax_j(l_i.) + sum_j sum_i q'_ji log softmax_i(l_.j) ].</summary>
    /// <param name="logits">[n, n] similarity logits.</param>
    /// <param name="positives">[n, n] bool, every diagonal entry true; null = diagonal only.</param>
    public static Tensor InfoNce(Tensor logits, Tensor? positives)
    {
        if (positives is null)
        {
            var labels = TorchScalars.Range(logits.shape[0]).to(logits.device);
            return SymmetricCrossEntropy(logits, labels);
        }
        var p = positives.to_type(logits.dtype);
        var rowTargets = p / p.sum(1, keepdim: true);
        var pt = p.t();
        var colTargets = pt / pt.sum(1, keepdim: true);
        var i2t = (rowTargets * nn.functional.log_softmax(logits, 1)).sum(1).mean().neg();
        var t2i = (colTargets * nn.functional.log_softmax(logits.t(), 1)).sum(1).mean().neg();
        return TorchScalars.Div(TorchScalars.Add(i2t, t2i), 2);
    }

    /// <summary>(CE(logits, labels) + CE(logits^T, labels)) / 2: symmetric InfoNCE over in-batch pairs.</summary>
    public static Tensor SymmetricCrossEntropy(Tensor logits, Tensor labels)
        => TorchScalars.Div(TorchScalars.Add(nn.functional.cross_entropy(logits, labels), nn.functional.cross_entropy(logits.t(), labels)), 2);

    /// <summary>SigLIP loss: -1/n sum_ij log sigmoid(z_ij (exp(t') s_ij + b)), s = z_img z_txt^T, z = 2P - 1.</summary>
    /// <param name="similarities">[n, n] cosine similarities s_ij = x_i . y_j.</param>
    /// <param name="logScale">0-d learnable t' (t = exp t').</param>
    /// <param name="bias">0-d learnable b.</param>
    /// <param name="positives">[n, n] bool, or null = the diagonal.</param>
    public static Tensor Sigmoid(Tensor similarities, Tensor logScale, Tensor bias, Tensor? positives)
    {
        long n = similarities.shape[0];
        var logits = TorchScalars.Add(similarities * logScale.exp(), bias);
        var pos = positives ?? eye(n, dtype: ScalarType.Bool, device: similarities.device);
        // z = +1 on positives, -1 elsewhere: z * logits = where(P, logits, -logits).
        var signed = where(pos, logits, logits.neg());
        return TorchScalars.Div(nn.functional.logsigmoid(signed).sum().neg(), (double)n);
    }

    /// <summary>The [n, n] positive mask of <paramref name="groups"/> (P_ij = groups[i] == groups[j]), or null when
    /// every group occurs once in the batch (then the plain diagonal-target code runs, bit for bit).</summary>
    public static Tensor? PositiveMask(IReadOnlyList<long> groups, Device device)
    {
        int n = groups.Count;
        if (groups.Distinct().Count() == n) return null;
        var mask = new bool[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                mask[i * n + j] = groups[i] == groups[j];
        return tensor(mask, new long[] { n, n }).to(device);
    }

    /// <summary>Row-wise log-softmax of in-batch cosine similarities / t with the diagonal (self) excluded.</summary>
    private static Tensor LogGraph(Tensor unitRows, Tensor mask, double t)
        => nn.functional.log_softmax(TorchScalars.MaskedFill(TorchScalars.Div(unitRows.matmul(unitRows.t()), t), mask, -1e9), 1);

    /// <summary>Structure-preserving divergence between the similarity graphs of the frozen features
    /// <paramref name="original"/> [n, d] (L2-normalised here) and the projected unit rows <paramref name="projected"/>
    /// [n, E]: per row, P = softmax over j != i of cos / <paramref name="t"/>; returns the mean over rows of
    /// KL(P_orig || P_proj) or JS(P_orig, P_proj) (nats; JS in [0, ln 2]).</summary>
    public static Tensor Structure(Tensor original, Tensor projected, double t, StructureDivergence divergence)
    {
        int n = (int)original.shape[0];
        var o = nn.functional.normalize(original, dim: 1);
        var mask = eye(n, dtype: ScalarType.Bool, device: original.device);
        var logPo = LogGraph(o, mask, t);
        var logPp = LogGraph(projected, mask, t);
        if (divergence == StructureDivergence.Kl)
            return (logPo.exp() * TorchScalars.Sub(logPo, logPp)).sum(1).mean();
        // log M = logsumexp(log P, log Q) - ln 2, in log space so the excluded diagonal (P = Q = 0) contributes 0, not NaN.
        using var minusLn2 = tensor((float)-Math.Log(2), device: original.device);
        var logM = TorchScalars.Add(logsumexp(stack(new[] { logPo, logPp }, 0), 0), minusLn2);
        var klPo = (logPo.exp() * TorchScalars.Sub(logPo, logM)).sum(1);
        var klPp = (logPp.exp() * TorchScalars.Sub(logPp, logM)).sum(1);
        return TorchScalars.Div(TorchScalars.Add(klPo, klPp), 2).mean();
    }
}
